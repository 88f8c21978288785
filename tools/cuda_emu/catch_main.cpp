#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>
int main(int argc, char** argv) {
  if (const char* y = std::getenv("EMU_YIELD")) emu::yield_every = std::atoi(y);
  if (const char* w = std::getenv("EMU_WATCHDOG")) emu::watchdog_s = std::atof(w);
  if (const char* s = std::getenv("EMU_SEED")) emu::order_rng().seed(static_cast<unsigned>(std::atoi(s)));
  const int rc = Catch::Session().run(argc, argv);
  std::fprintf(stderr, "emu: %ld launches, %ld blocks\n", emu::launches, emu::blocks_run);
  return rc;
}
