// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The cache API bodies of shared_api.hpp on the host cache; tests/cache/cuda/adaptive_cache_test.cu
// runs the same bodies on the device cache.
#include "cache/shared_api.hpp"

namespace {
using namespace kvsieve;

auto make_host(const store_geometry& g, const cache_options& opt) {
  return adaptive_cache(make_fastgen_ladder(), recovery_profiler(0.9), g, opt);
}
} // namespace

TEST_CASE("host cache: a batched decode equals single decodes", "[cache][api]") {
  kvsieve::testing::batch_equals_single(make_host, 8, 2, 64, 40);
  kvsieve::testing::batch_equals_single(make_host, 4, 4, 32, 20);
}

TEST_CASE("host cache: argument errors of the shared API", "[cache][api]") {
  kvsieve::testing::argument_errors(make_host);
}
