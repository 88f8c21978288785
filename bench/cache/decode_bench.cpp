// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The headline: one adaptive_cache::decode step of one layer (8 query heads over 2 KV heads,
// head_dim 128) at context lengths 128 to 16k, float and bfloat16 storage.
//   BM_decode_full<T>/context:C                 ladder<full>: every token stays (the baseline of
//                                               FastGen itself)
//   BM_decode_local<T>/context:C/keep_pct:k     ladder<local(k/100)>: FastGen's C_local forced on
//                                               every head (a one-candidate ladder, so the
//                                               profiler has no choice), about k% of the context
//                                               resident; evictions happen every step
//   BM_decode_raw<T>/context:C/keep_pct:k       raw baseline: contiguous arrays holding the same
//                                               number of tokens (ceil(k% of C)), same arithmetic,
//                                               no pages, no policy, no scores
// Contexts are built before the timed loop (bench/cache/cache_harness.hpp, decode_pool) and
// stay within [C - slack/2, C + slack/2), slack = max(C/16, 16), so the mean context is C.
// Counters: items_per_second = decode steps (tokens) per second; bytes_per_second and
// bytes_per_iter = K and V bytes of the resident tokens read per step; kept_tokens = mean
// resident tokens per KV head; context = mean tokens seen; keep_fraction = their ratio;
// rebuilds = pool rebuilds during the run (untimed).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <kvsieve/policy/fastgen.hpp>

#include "cache/cache_harness.hpp"
#include "common/bench_common.hpp"
#include "common/raw_decode.hpp"

namespace {

using namespace kvsieve;
using bench::hd;
using bench::hkv;
using bench::hq;

template <candidate_ladder Ladder, storage_element T>
void run_decode(benchmark::State& state, bench::decode_pool<Ladder, T>& pool) {
  for (auto _ : state) {
    if (pool.exhausted()) {
      state.PauseTiming();
      pool.rebuild();
      state.ResumeTiming();
    }
    pool.step();
  }
  state.SetItemsProcessed(state.iterations());
  bench::report_bytes(state, pool.kv_bytes_per_step());
  state.counters["kept_tokens"] = pool.mean_kept();
  state.counters["context"] = pool.mean_context();
  state.counters["keep_fraction"] = pool.mean_kept() / pool.mean_context();
  state.counters["rebuilds"] = static_cast<double>(pool.rebuilds());
}

template <storage_element T>
void BM_decode_full(benchmark::State& state) {
  using full_ladder = ladder<policies::full>;
  const auto context = static_cast<std::int32_t>(state.range(0));
  auto& pool = bench::acquire_pool<full_ladder, T>(100, full_ladder{}, context, 1.0);
  run_decode(state, pool);
}

template <storage_element T>
void BM_decode_local(benchmark::State& state) {
  using local_ladder = ladder<policies::local>;
  const auto context = static_cast<std::int32_t>(state.range(0));
  const auto keep_pct = static_cast<int>(state.range(1));
  const double ratio = keep_pct / 100.0;
  auto& pool = bench::acquire_pool<local_ladder, T>(
      keep_pct, local_ladder(policies::local(ratio)), context, ratio);
  run_decode(state, pool);
}

template <storage_element T>
void BM_decode_raw(benchmark::State& state) {
  const auto context = static_cast<double>(state.range(0));
  const auto keep = static_cast<double>(state.range(1)) / 100.0;
  const auto tokens = static_cast<std::size_t>(std::ceil(keep * context - 1e-9));
  bench::raw_kv_cache<T> cache(bench::opaque(hkv), bench::opaque(hd), tokens, 51);
  const auto group = bench::opaque(hq / hkv);
  bench::step_bank bank;
  std::vector<float> out(hq * hd);
  const float scale = 1.0F / std::sqrt(static_cast<float>(hd));
  for (auto _ : state) {
    const auto in = bank.next();
    cache.step(in.q.data(), in.k.data(), in.v.data(), out.data(), group, scale);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  bench::report_bytes(state, static_cast<double>(cache.kv_bytes()));
  state.counters["kept_tokens"] = static_cast<double>(tokens);
  state.counters["context"] = context;
  state.counters["keep_fraction"] = static_cast<double>(tokens) / context;
}

const std::vector<std::int64_t> contexts{128, 512, 2048, 8192, 16384};
const std::vector<std::int64_t> keep_pcts{40, 20};

BENCHMARK_TEMPLATE(BM_decode_full, float)
    ->ArgsProduct({contexts})
    ->ArgNames({"context"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_decode_local, float)
    ->ArgsProduct({contexts, keep_pcts})
    ->ArgNames({"context", "keep_pct"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_decode_raw, float)
    ->ArgsProduct({contexts, {100, 40, 20}})
    ->ArgNames({"context", "keep_pct"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_decode_full, kvsieve::bfloat16)
    ->ArgsProduct({contexts})
    ->ArgNames({"context"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_decode_local, kvsieve::bfloat16)
    ->ArgsProduct({contexts, keep_pcts})
    ->ArgNames({"context", "keep_pct"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK_TEMPLATE(BM_decode_raw, kvsieve::bfloat16)
    ->ArgsProduct({contexts, {100, 40, 20}})
    ->ArgNames({"context", "keep_pct"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);

} // namespace
