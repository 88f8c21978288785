// Must not compile: a `window` without its step_context argument is an error naming `window`,
// not a policy without a window.
#include <kvsieve/kvsieve.hpp>
struct no_arg_window {
  static constexpr std::string_view name = "no_arg_window";
  auto keeps(kvsieve::token_info, kvsieve::step_context) const -> bool { return false; }
  auto window() const -> std::int32_t { return 4; }
};
int main() { kvsieve::ladder<kvsieve::policies::special, no_arg_window> l; }
