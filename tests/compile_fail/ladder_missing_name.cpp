// Must not compile: a ladder candidate without `name`; the error names that requirement.
#include <kvsieve/kvsieve.hpp>
struct nameless {
  auto keeps(kvsieve::token_info, kvsieve::step_context) const -> bool { return true; }
};
int main() { kvsieve::ladder<kvsieve::policies::special, kvsieve::policies::full, nameless> l; }
