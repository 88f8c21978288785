// Must not compile: a policy without keeps() fails the concept, naming has_keep_rule.
#include <kvsieve/kvsieve.hpp>
struct broken {
  static constexpr std::string_view name = "broken";
};
static_assert(kvsieve::policy<broken>);
int main() {}
