// Must not compile: a non-const `budget` is an error naming `budget`, not a policy without one.
#include <kvsieve/kvsieve.hpp>
struct mutable_budget {
  static constexpr std::string_view name = "mutable_budget";
  auto keeps(kvsieve::token_info, kvsieve::step_context) const -> bool { return false; }
  auto budget(kvsieve::step_context ctx) -> std::int32_t { return ctx.length / 2; }
};
int main() { kvsieve::policies::hybrid<kvsieve::policies::local, mutable_budget> h; }
