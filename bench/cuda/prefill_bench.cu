// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve::cuda::prefill_attention, bf16 K/V, head_dim 128, GQA 32 query heads over 8 KV heads
// (a Llama-3-8B layer), prompts of 1k, 4k and 16k tokens:
//   BM_prefill/length:L/stats:0   attention only (the baseline of the statistics' cost);
//   BM_prefill/length:L/stats:1   attention plus FastGen's profiling statistics (score, colsum
//       and three near_w windows: 10%, 20% and 30% of L), recovery rows = the whole prompt.
// Counters: flop_per_s counts the causal attention's useful FLOPs, 4 * D * n_head_q *
// L (L + 1) / 2 (Q.K and P.V), the same for both variants, so it falls by the statistics' cost;
// stats_over_plain (stats:1 only) is the median time with statistics over the median without,
// both measured in the same process before the timed loop (the issue's target: <= 1.15).
// bytes_per_second / pct_of_copy_bw count the compulsory DRAM traffic (q, k, v, out and the
// statistics once); the kernel is compute-bound, so these are small by design.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>

#include <kvsieve/attention/cuda/prefill.cuh>

#include "cuda/cuda_bench.cuh"

namespace {

namespace kc = kvsieve::cuda;
namespace kb = kvsieve::bench;
using kv_type = __nv_bfloat16;

constexpr std::int32_t n_head_q = 32;
constexpr std::int32_t n_head_kv = 8;
constexpr std::int32_t head_dim = 128;

/// One prompt's device tensors: q [L, 32, 128] float, k/v [L, 8, 128] bf16, out like q, and the
/// statistics [32, L] (near: [32, 3, L]).
struct prompt {
  std::int32_t length;
  kc::device_buffer<float> q;
  kc::device_buffer<kv_type> k;
  kc::device_buffer<kv_type> v;
  kc::device_buffer<float> out;
  kc::device_buffer<float> score;
  kc::device_buffer<float> colsum;
  kc::device_buffer<float> near;
  kc::prefill_stats stats;

  prompt(std::int32_t l, std::uint32_t seed)
      : length(l), q(elems(l, n_head_q)), k(elems(l, n_head_kv)), v(elems(l, n_head_kv)),
        out(elems(l, n_head_q)), score(stat_elems(l)), colsum(stat_elems(l)),
        near(3 * stat_elems(l)) {
    kb::fill_uniform(q.data(), q.size(), seed);
    kb::fill_uniform(k.data(), k.size(), seed + 1);
    kb::fill_uniform(v.data(), v.size(), seed + 2);
    stats.score = score.data();
    stats.colsum = colsum.data();
    stats.near = near.data();
    stats.windows = {std::max(1, l / 10), std::max(1, l / 5), std::max(1, l * 3 / 10)};
    stats.n_windows = 3;
    stats.first_row = 0;
  }

  static auto elems(std::int32_t l, std::int32_t heads) -> std::size_t {
    return static_cast<std::size_t>(l) * static_cast<std::size_t>(heads) * head_dim;
  }
  static auto stat_elems(std::int32_t l) -> std::size_t {
    return static_cast<std::size_t>(l) * n_head_q;
  }
  [[nodiscard]] auto bytes(bool with_stats) const -> std::size_t {
    return q.bytes() + k.bytes() + v.bytes() + out.bytes() +
           (with_stats ? score.bytes() + colsum.bytes() + near.bytes() : 0);
  }

  void run(bool with_stats, cudaStream_t stream) const {
    kc::prefill_attention<kv_type>(q.data(), k.data(), v.data(), out.data(), length, n_head_q,
                                   n_head_kv, head_dim, 0.08838834764831845F, // 1 / sqrt(128)
                                   with_stats ? &stats : nullptr, stream);
  }
};

void BM_prefill(benchmark::State& state) {
  const auto length = static_cast<std::int32_t>(state.range(0));
  const bool with_stats = state.range(1) != 0;
  cudaStream_t stream = nullptr;
  try {
    kc::check(cudaStreamCreate(&stream), "cudaStreamCreate");
    const std::size_t set_bytes = prompt::elems(length, n_head_q) * sizeof(float) * 2 +
                                  prompt::elems(length, n_head_kv) * sizeof(kv_type) * 2 +
                                  prompt::stat_elems(length) * sizeof(float) * 5;
    kb::rotating<prompt> sets(set_bytes, [&](std::size_t i) {
      return prompt(length, 17 + 3 * static_cast<std::uint32_t>(i));
    });
    kc::check(cudaDeviceSynchronize(), "input fill");
    kb::gpu_timer timer(stream);
    if (with_stats) {
      auto& p = sets.next();
      const double plain = timer.median_seconds(5, [&] { p.run(false, stream); });
      const double stats = timer.median_seconds(5, [&] { p.run(true, stream); });
      state.counters["stats_over_plain"] = benchmark::Counter(stats / plain);
    }
    for (auto _ : state) {
      auto& p = sets.next();
      timer.start();
      p.run(with_stats, stream);
      state.SetIterationTime(timer.stop());
    }
    const double pairs = static_cast<double>(length) * (static_cast<double>(length) + 1.0) / 2.0;
    kb::report_flops(state, 4.0 * head_dim * n_head_q * pairs);
    kb::report_bytes(state, static_cast<double>(sets.next().bytes(with_stats)));
    state.counters["rotating_sets"] = benchmark::Counter(static_cast<double>(sets.size()));
  } catch (const kvsieve::error& e) {
    state.SkipWithError(e.what());
  }
  if (stream != nullptr) {
    (void)cudaStreamDestroy(stream);
  }
}

BENCHMARK(BM_prefill)
    ->ArgNames({"length", "stats"})
    ->ArgsProduct({{1024, 4096, 16384}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

} // namespace
