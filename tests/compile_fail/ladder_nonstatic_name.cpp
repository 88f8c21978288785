// Must not compile: a non-static `name` fails the policy concept, and ladder says so by name.
#include <kvsieve/kvsieve.hpp>
struct member_name {
  std::string_view name = "member_name";
  auto keeps(kvsieve::token_info, kvsieve::step_context) const -> bool { return true; }
};
static_assert(!kvsieve::policy<member_name>);
int main() { kvsieve::ladder<kvsieve::policies::special, member_name> l; }
