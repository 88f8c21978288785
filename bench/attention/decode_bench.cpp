// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// attend_paged (attention/decode.hpp) alone, against the machine's read bandwidth and a scalar
// contiguous baseline: one decode query of one layer (8 query heads over 2 KV heads, head_dim
// 128) over n resident tokens per KV head, for float and bfloat16 storage. No append, no policy,
// no scores: cache/decode_bench.cpp adds the cache's bookkeeping on top.
//   BM_read_bandwidth/mb:256                 a SIMD sum over 256 MB: the single-core read
//                                            bandwidth (common/read_bandwidth.hpp)
//   BM_attend_paged<T>/tokens:n/page_size:p  kvsieve::attend_paged over a paged_store<T>;
//                                            65536 tokens = 128 MB (float) / 64 MB (bf16) of K/V
//   BM_attend_raw<T>/tokens:n                bench::raw_attend, the scalar loop attend_paged used
//                                            before its SIMD kernels, over [n, head_dim] arrays
//   BM_attend_heads<T>/threads:t             8 KV heads x 16384 tokens (128 MB / 64 MB) split
//                                            over a kvsieve::thread_pool of t threads, one head
//                                            per task, as adaptive_cache::decode does (real time)
// items_per_second counts decode queries (one token of one layer); bytes are the K and V rows
// read; pct_of_read_bw compares that rate with the read bandwidth measured in the same process.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <kvsieve/attention/decode.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/core/parallel.hpp>
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

void BM_read_bandwidth(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0)) << 20U;
  const std::vector<float> buf(bytes / sizeof(float), 1.0F);
  for (auto _ : state) {
    benchmark::DoNotOptimize(bench::simd_sum(buf.data(), buf.size()));
  }
  bench::report_bytes(state, static_cast<double>(bytes));
}

/// A store of `heads` KV heads with n random tokens each.
template <storage_element T>
auto make_store(std::int32_t heads, std::int32_t n, std::int32_t page_size)
    -> std::unique_ptr<paged_store<T>> {
  auto store = std::make_unique<paged_store<T>>(store_geometry{
      .n_seq = 1, .n_layer = 1, .n_head_kv = heads, .head_dim = head_dim, .page_size = page_size});
  const auto d = static_cast<std::size_t>(head_dim);
  const auto rows = bench::random_floats(2 * d * 4096, 11);
  for (std::int32_t h = 0; h < heads; ++h) {
    for (std::int32_t t = 0; t < n; ++t) {
      const float* r = rows.data() + 2 * d * static_cast<std::size_t>((t * 7 + h) % 4096);
      store->append({0, 0, h}, {r, d}, {r + d, d},
                    {t, 0.0F, token_class::none, keep_reason::rule});
    }
  }
  return store;
}

template <storage_element T>
void BM_attend_paged(benchmark::State& state) {
  const auto n = static_cast<std::int32_t>(state.range(0));
  const auto store = make_store<T>(n_head_kv, n, static_cast<std::int32_t>(state.range(1)));
  const auto d = static_cast<std::size_t>(head_dim);
  const auto q = bench::random_floats(static_cast<std::size_t>(n_head_q) * d, 12);
  std::vector<float> out(q.size());
  std::vector<float> prob(static_cast<std::size_t>(n));
  decode_scratch scratch;
  for (auto _ : state) {
    for (std::int32_t h = 0; h < n_head_kv; ++h) {
      const auto first = static_cast<std::size_t>(h * group) * d;
      attend_paged(*store, {0, 0, h}, q.data() + first, out.data() + first, group, scale,
                   group_reduce::mean, scratch, std::span<float>(prob));
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  const double bytes = static_cast<double>(n_head_kv) * static_cast<double>(n) *
                       static_cast<double>(2 * d * sizeof(T));
  bench::report_bytes(state, bytes);
  bench::report_read_share(state, bytes);
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
  const double bytes = 2.0 * static_cast<double>(n_head_kv) * static_cast<double>(n) *
                       static_cast<double>(d * sizeof(T));
  bench::report_bytes(state, bytes);
  bench::report_read_share(state, bytes);
}

template <storage_element T>
void BM_attend_heads(benchmark::State& state) {
  constexpr std::int32_t heads = 8;
  constexpr std::int32_t n = 16384;
  const auto threads = static_cast<std::size_t>(state.range(0));
  const auto store = make_store<T>(heads, n, 16);
  const auto d = static_cast<std::size_t>(head_dim);
  const auto q = bench::random_floats(static_cast<std::size_t>(heads * group) * d, 12);
  std::vector<float> out(q.size());
  std::vector<float> prob(static_cast<std::size_t>(heads) * n);
  std::vector<decode_scratch> scratch(threads);
  thread_pool pool(threads);
  for (auto _ : state) {
    pool.parallel_for(heads, 1, [&](std::size_t b, std::size_t e, std::size_t slot) {
      for (std::size_t h = b; h < e; ++h) {
        const auto first = h * static_cast<std::size_t>(group) * d;
        attend_paged(*store, {0, 0, static_cast<std::int32_t>(h)}, q.data() + first,
                     out.data() + first, group, scale, group_reduce::mean, scratch[slot],
                     std::span<float>(prob).subspan(h * n, n));
      }
    });
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  const double bytes = static_cast<double>(heads) * n * static_cast<double>(2 * d * sizeof(T));
  bench::report_bytes(state, bytes);
  bench::report_read_share(state, bytes);
}

const std::vector<std::int64_t> token_counts{512, 4096, 65536};

BENCHMARK(BM_read_bandwidth)->Arg(256)->ArgName("mb")->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_attend_paged, float)
    ->ArgsProduct({token_counts, {16, 64}})
    ->ArgNames({"tokens", "page_size"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_paged, kvsieve::bfloat16)
    ->ArgsProduct({token_counts, {16, 64}})
    ->ArgNames({"tokens", "page_size"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_paged, kvsieve::half)
    ->ArgsProduct({{65536}, {16}})
    ->ArgNames({"tokens", "page_size"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_raw, float)
    ->ArgsProduct({token_counts})
    ->ArgNames({"tokens"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_raw, kvsieve::bfloat16)
    ->ArgsProduct({token_counts})
    ->ArgNames({"tokens"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_heads, float)
    ->ArgsProduct({{1, 2}})
    ->ArgNames({"threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_attend_heads, kvsieve::bfloat16)
    ->ArgsProduct({{1, 2}})
    ->ArgNames({"threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", bench::min_of);

} // namespace
