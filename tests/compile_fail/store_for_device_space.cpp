// Must not compile in a host TU: the device store lives in the CUDA header.
#include <kvsieve/kvsieve.hpp>
int main() { kvsieve::paged_store<float, kvsieve::cuda_space> s({}); }
