// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// adaptive_cache with cache_options::threads: bit for bit the results of the serial cache (every
// head's sums run on one thread in one order) for 1, 2 and 3 threads, on problems large enough
// to cross parallel_min_macs in prefill and decode; and still equal to the naive reference.
#include <cache/cache_fixture.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

using namespace kvsieve;
using kvsieve::testing::check_head_against_reference;
using kvsieve::testing::make_problem;
using kvsieve::testing::run_cache;
using kvsieve::testing::trace;

namespace {

auto same_bits(const std::vector<float>& a, const std::vector<float>& b) -> bool {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct run_result {
  trace tr;
  cache_report report;
};

auto run_with(thread_pool* pool, const testing::problem& p, double threshold,
              group_reduce reduce) -> run_result {
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = p.hkv, .head_dim = p.d,
                         .page_size = 16};
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(threshold), g,
                       {.n_head_q = p.hq, .group = reduce, .threads = pool});
  auto tr = run_cache(cache, p);
  return {std::move(tr), cache.report()};
}

} // namespace

TEST_CASE("a threaded cache gives the serial cache's results bit for bit", "[cache][threads]") {
  // 8 query heads over 4 KV heads, head_dim 64, 400 prompt tokens: prefill has 8 * 400^2 * 64
  // multiply-adds and full-cache decode 4 * 2 * 400 * 64 * 2, both above parallel_min_macs.
  const auto p = make_problem(400, 8, 4, 64, 24, 77);
  static_assert(adaptive_cache<fastgen_ladder, recovery_profiler>::parallel_min_macs <
                4.0 * 2 * 400 * 64 * 2);
  for (const double threshold : {1.0, 0.9}) {
    for (const auto reduce : {group_reduce::mean, group_reduce::worst}) {
      const auto serial = run_with(nullptr, p, threshold, reduce);
      for (const std::size_t threads : {1U, 2U, 3U}) {
        thread_pool pool(threads);
        const auto par = run_with(&pool, p, threshold, reduce);
        INFO("threshold " << threshold << ", threads " << threads);
        CHECK(same_bits(par.tr.prefill_out, serial.tr.prefill_out));
        REQUIRE(par.tr.outs.size() == serial.tr.outs.size());
        for (std::size_t s = 0; s < serial.tr.outs.size(); ++s) {
          CHECK(same_bits(par.tr.outs[s], serial.tr.outs[s]));
        }
        CHECK(par.tr.pos == serial.tr.pos);
        CHECK(par.tr.choices == serial.tr.choices);
        REQUIRE(par.report.heads.size() == serial.report.heads.size());
        for (std::size_t h = 0; h < serial.report.heads.size(); ++h) {
          CHECK(par.report.heads[h].candidates == serial.report.heads[h].candidates);
        }
      }
    }
  }
}

TEST_CASE("a threaded cache matches the naive reference", "[cache][threads]") {
  const auto p = make_problem(300, 8, 2, 64, 12, 78);
  thread_pool pool(2);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 64,
                         .page_size = 8};
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(0.9), g,
                       {.n_head_q = 8, .threads = &pool});
  const auto tr = run_cache(cache, p);
  for (std::int32_t h = 0; h < 2; ++h) {
    cache.ladder().visit(tr.choices[static_cast<std::size_t>(h)], [&](const auto& pol) {
      check_head_against_reference(pol, p, tr, h, cache.options());
    });
  }
}
