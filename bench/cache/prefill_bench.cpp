// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// adaptive_cache::prefill of one layer (8 query heads over 2 KV heads, head_dim 128, float
// storage): attention with the statistics fused in, profiling, compression, store writes.
//   BM_prefill_fastgen/length:L/pattern:p   FastGen's ladder with T = 0.95; pattern 0 is random
//                                           q/k/v (near-uniform attention: heads choose full),
//                                           pattern 1 adds a multi-frequency rotation to q and k
//                                           so attention is local (heads choose a compressing
//                                           candidate)
//   BM_prefill_full/length:L                ladder<full>: statistics without windows, no choice
//   BM_prefill_raw/length:L/static_head_dim:s
//                                           raw baseline: causal_attention of the 8 query heads
//                                           with a no-op row callback, no cache at all; head_dim
//                                           a run-time value (s = 0, as the cache has it) or a
//                                           compile-time constant (s = 1)
// Each iteration releases the sequence (O(pages)) and prefills it again. Counters:
// items_per_second = prompt tokens per second; keep_fraction = K/V bytes kept / bytes of the
// whole prompt; profile_share = profiling and compression time / prefill time (the cache's own
// timers, cache_report).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <kvsieve/attention/prefill.hpp>
#include <kvsieve/policy/fastgen.hpp>

#include "cache/cache_harness.hpp"
#include "common/bench_common.hpp"

namespace {

using namespace kvsieve;
using bench::hd;
using bench::hkv;
using bench::hq;

/// A prompt of `length` tokens. Pattern 1: the first 16 channels of every q and k row carry
/// (cos, sin) of position * w_m for eight frequencies w_m = 0.5 / 2^m, so q_i . k_j rises with
/// sum_m cos(w_m (i - j)), which peaks at i = j: attention concentrates on recent tokens.
auto make_prompt(std::size_t length, int pattern) -> bench::qkv {
  auto p = bench::make_qkv(length, hq, hkv, hd, 61);
  if (pattern == 1) {
    constexpr float amplitude = 4.5F;
    auto rotate = [&](std::vector<float>& x, std::size_t heads) {
      for (std::size_t t = 0; t < length; ++t) {
        for (std::size_t h = 0; h < heads; ++h) {
          float* row = x.data() + (t * heads + h) * hd;
          for (std::size_t m = 0; m < 8; ++m) {
            const float angle = static_cast<float>(t) * 0.5F / static_cast<float>(1U << m);
            row[2 * m] = amplitude * std::cos(angle);
            row[2 * m + 1] = amplitude * std::sin(angle);
          }
        }
      }
    };
    rotate(p.q, hq);
    rotate(p.k, hkv);
  }
  return p;
}

template <candidate_ladder Ladder>
void run_prefill(benchmark::State& state, Ladder ladder, int pattern) {
  const auto length = static_cast<std::size_t>(state.range(0));
  const auto prompt = make_prompt(length, pattern);
  const auto classes = bench::synthetic_classes(length);
  std::vector<float> out(prompt.q.size());
  bench::layer_cache<Ladder, float> cache(std::move(ladder), recovery_profiler(0.95),
                                          bench::layer_geometry(1), bench::layer_options());
  for (auto _ : state) {
    cache.release(0);
    cache.prefill(0, 0, {prompt.q.data(), {length, hq, hd}}, {prompt.k.data(), {length, hkv, hd}},
                  {prompt.v.data(), {length, hkv, hd}}, classes, {out.data(), {length, hq, hd}});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const auto report = cache.report();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(length));
  state.counters["keep_fraction"] =
      static_cast<double>(report.kv_bytes_kept) / static_cast<double>(report.kv_bytes_full);
  state.counters["profile_share"] =
      report.profile_seconds / (report.prefill_attention_seconds + report.profile_seconds);
  // The choice of each KV head, as ladder indices (0 = special ... 4 = full on FastGen's).
  for (const auto& h : report.heads) {
    state.counters["choice_h" + std::to_string(h.head.head)] = static_cast<double>(h.choice);
  }
}

void BM_prefill_fastgen(benchmark::State& state) {
  run_prefill(state, make_fastgen_ladder(), static_cast<int>(state.range(1)));
}

void BM_prefill_full(benchmark::State& state) { run_prefill(state, ladder<policies::full>{}, 0); }

/// Plain causal attention of the 8 query heads. The cache takes head_dim at run time and so does
/// this baseline (static_head_dim:0); static_head_dim:1 makes it a compile-time constant, which
/// shows what specialising the loops on head_dim would be worth.
template <bool StaticHeadDim>
void raw_prefill(benchmark::State& state) {
  const auto length = static_cast<std::size_t>(state.range(0));
  const auto prompt = make_prompt(length, 0);
  std::vector<float> out(prompt.q.size());
  std::vector<float> row;
  const auto d = StaticHeadDim ? hd : bench::opaque(hd);
  const float scale = 1.0F / std::sqrt(static_cast<float>(d));
  const std::size_t group = hq / hkv;
  for (auto _ : state) {
    for (std::size_t h = 0; h < hq; ++h) {
      causal_attention({prompt.q.data() + h * d, hq * d},
                       {prompt.k.data() + (h / group) * d, hkv * d},
                       {prompt.v.data() + (h / group) * d, hkv * d}, out.data() + h * d, hq * d,
                       static_cast<std::int32_t>(length), static_cast<std::int32_t>(d), scale,
                       row, [](std::int32_t, std::span<const float>) {});
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(length));
}

void BM_prefill_raw(benchmark::State& state) {
  if (state.range(1) != 0) {
    raw_prefill<true>(state);
  } else {
    raw_prefill<false>(state);
  }
}

const std::vector<std::int64_t> lengths{256, 512, 1024, 2048};

BENCHMARK(BM_prefill_fastgen)
    ->ArgsProduct({lengths, {0, 1}})
    ->ArgNames({"length", "pattern"})
    ->Unit(benchmark::kMillisecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK(BM_prefill_full)
    ->ArgsProduct({lengths})
    ->ArgNames({"length"})
    ->Unit(benchmark::kMillisecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK(BM_prefill_raw)
    ->ArgsProduct({lengths, {0, 1}})
    ->ArgNames({"length", "static_head_dim"})
    ->Unit(benchmark::kMillisecond)
    ->ComputeStatistics("min", bench::min_of);

} // namespace
