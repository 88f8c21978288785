// Must not compile: a `ranking` returning something that is not a score_ranking names `ranking`.
#include <kvsieve/kvsieve.hpp>
struct int_ranking {
  static constexpr std::string_view name = "int_ranking";
  auto keeps(kvsieve::token_info, kvsieve::step_context) const -> bool { return false; }
  auto budget(kvsieve::step_context ctx) const -> std::int32_t { return ctx.length / 2; }
  auto ranking() const -> int { return 1; }
};
int main() { kvsieve::ladder<int_ranking> l; }
