// Must not compile: hybrid members must be policies.
#include <kvsieve/kvsieve.hpp>
int main() { kvsieve::policies::hybrid<kvsieve::policies::local, int> h; }
