// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// attend_paged (attention/decode.hpp) alone, against the raw contiguous baseline: one decode
// query of one layer (8 query heads over 2 KV heads, head_dim 128) over n resident tokens per KV
// head, for float and bfloat16 storage. No append, no policy, no scores: this pair isolates the
// price of the pages, and cache/decode_bench.cpp adds the cache's bookkeeping on top.
//   BM_attend_paged<T>/tokens:n/page_size:p   kvsieve::attend_paged over a paged_store<T>
//   BM_attend_raw<T>/tokens:n                 bench::raw_attend over [n, head_dim] arrays
// items_per_second counts decode queries (one token of one layer); bytes are the K and V rows
// read.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <kvsieve/attention/decode.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/store/paged_store.hpp>

#include "common/bench_common.hpp"
#include "common/raw_decode.hpp"

namespace {

using namespace kvsieve;

constexpr std::int32_t n_head_q = 8;
constexpr std::int32_t n_head_kv = 2;
constexpr std::int32_t group = n_head_q / n_head_kv;
constexpr std::int32_t head_dim = 128;
const float scale = 1.0F / std::sqrt(static_cast<float>(head_dim));

template <storage_element T>
void BM_attend_paged(benchmark::State& state) {
  const auto n = static_cast<std::int32_t>(state.range(0));
  const auto page_size = static_cast<std::int32_t>(state.range(1));
  paged_store<T> store(store_geometry{.n_seq = 1, .n_layer = 1, .n_head_kv = n_head_kv,
                                      .head_dim = head_dim, .page_size = page_size});
  const auto d = static_cast<std::size_t>(head_dim);
  const auto rows = bench::random_floats(2 * d * static_cast<std::size_t>(n), 11);
  for (std::int32_t h = 0; h < n_head_kv; ++h) {
    for (std::int32_t t = 0; t < n; ++t) {
      const float* r = rows.data() + 2 * d * static_cast<std::size_t>(t);
      store.append({0, 0, h}, {r, d}, {r + d, d}, {t, 0.0F, token_class::none, keep_reason::rule});
    }
  }
  const auto q = bench::random_floats(static_cast<std::size_t>(n_head_q) * d, 12);
  std::vector<float> out(q.size());
  std::vector<float> prob(static_cast<std::size_t>(n));
  decode_scratch scratch;
  for (auto _ : state) {
    for (std::int32_t h = 0; h < n_head_kv; ++h) {
      const auto first = static_cast<std::size_t>(h * group) * d;
      attend_paged(store, {0, 0, h}, q.data() + first, out.data() + first, group, scale,
                   group_reduce::mean, scratch, std::span<float>(prob));
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  bench::report_bytes(state, static_cast<double>(n_head_kv) * static_cast<double>(n) *
                                 static_cast<double>(store.kv_bytes_per_token()));
}

template <storage_element T>
void BM_attend_raw(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto d = bench::opaque(static_cast<std::size_t>(head_dim));
  const auto g = bench::opaque(static_cast<std::size_t>(group));
  const auto ks = bench::random_floats(static_cast<std::size_t>(n_head_kv) * n * d, 11);
  const auto vs = bench::random_floats(ks.size(), 13);
  std::vector<T> k(ks.size());
  std::vector<T> v(vs.size());
  for (std::size_t i = 0; i < ks.size(); ++i) {
    k[i] = store_as<T>(ks[i]);
    v[i] = store_as<T>(vs[i]);
  }
  const auto q = bench::random_floats(static_cast<std::size_t>(n_head_q) * d, 12);
  std::vector<float> out(q.size());
  std::vector<float> logits;
  std::vector<float> row;
  for (auto _ : state) {
    for (std::size_t h = 0; h < static_cast<std::size_t>(n_head_kv); ++h) {
      const std::size_t first = h * g * d;
      bench::raw_attend(k.data() + h * n * d, v.data() + h * n * d, n, d, q.data() + first,
                        out.data() + first, g, scale, logits, row);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  bench::report_bytes(state, 2.0 * static_cast<double>(n_head_kv) * static_cast<double>(n) *
                                 static_cast<double>(d * sizeof(T)));
}

const std::vector<std::int64_t> token_counts{128, 512, 2048, 8192, 16384};

BENCHMARK_TEMPLATE(BM_attend_paged, float)
    ->ArgsProduct({token_counts, {16, 64}})
    ->ArgNames({"tokens", "page_size"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_raw, float)
    ->ArgsProduct({token_counts})
    ->ArgNames({"tokens"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_paged, kvsieve::bfloat16)
    ->ArgsProduct({token_counts, {16, 64}})
    ->ArgNames({"tokens", "page_size"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_raw, kvsieve::bfloat16)
    ->ArgsProduct({token_counts})
    ->ArgNames({"tokens"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);

} // namespace
