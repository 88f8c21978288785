// Must not compile: two budgeted members (here one nested) have no single ranking.
#include <kvsieve/kvsieve.hpp>
using namespace kvsieve::policies;
int main() { hybrid<frequent, hybrid<special, frequent>> h(frequent(0.1), {{}, frequent(0.2)}); }
