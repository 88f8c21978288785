// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// What every kvsieve benchmark shares: the context printed before the run (bench_main.cpp),
/// report_bytes (bytes touched as a rate, with pct_of_peak when a peak bandwidth is known), and
/// random inputs. Inputs are generated before the timed loop; their values never change the
/// amount of work, only the numbers computed.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <kvsieve/core/token_class.hpp>

#include "read_bandwidth.hpp"

namespace kvsieve::bench {

/// Peak bandwidth of the machine in GB/s (1e9 bytes/s), or 0 when unknown. A host has no table
/// entry: set KVSIEVE_BENCH_PEAK_GBPS to the figure you trust (a STREAM triad, say) to get
/// pct_of_peak. The CUDA benchmarks add a per-GPU table here.
[[nodiscard]] inline auto peak_gbps() -> double {
  static const double peak = [] {
    const char* env = std::getenv("KVSIEVE_BENCH_PEAK_GBPS");
    return env == nullptr ? 0.0 : std::strtod(env, nullptr);
  }();
  return peak;
}

/// Records `bytes_per_iteration` bytes touched by each iteration: SetBytesProcessed (shown as
/// bytes_per_second), a `bytes_per_iter` counter, and `pct_of_peak` when peak_gbps() is known.
/// Call after the timed loop.
inline void report_bytes(benchmark::State& state, double bytes_per_iteration) {
  const double total = bytes_per_iteration * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(total));
  state.counters["bytes_per_iter"] = benchmark::Counter(bytes_per_iteration);
  if (const double peak = peak_gbps(); peak > 0.0) {
    // kIsRate divides by the elapsed seconds: total * 100 / (peak * 1e9) / seconds.
    state.counters["pct_of_peak"] =
        benchmark::Counter(total * 100.0 / (peak * 1e9), benchmark::Counter::kIsRate);
  }
}

/// Adds `pct_of_read_bw`: the rate of `bytes_per_iteration` bytes per iteration as a percentage
/// of this machine's single-core read bandwidth, measured in the same process
/// (single_core_read_gbps; the first call takes about a second). Call after the timed loop.
inline void report_read_share(benchmark::State& state, double bytes_per_iteration) {
  const double total = bytes_per_iteration * static_cast<double>(state.iterations());
  state.counters["pct_of_read_bw"] = benchmark::Counter(
      total * 100.0 / (single_core_read_gbps() * 1e9), benchmark::Counter::kIsRate);
}

/// `x`, hidden from the optimiser. The library takes its sizes (head_dim, group) at run time, so
/// a raw baseline must too: a compile-time head_dim lets the compiler specialise the loops, and
/// the pair would measure that, not the abstraction.
template <class T>
[[nodiscard]] auto opaque(T x) -> T {
  benchmark::DoNotOptimize(x);
  return x;
}

/// A repetition statistic: the smallest value. Registered as "min" beside Google Benchmark's
/// mean, median, stddev and cv (->ComputeStatistics("min", bench::min_of)). On a shared machine
/// the least disturbed repetition is the best estimate of the code's own cost; read it beside
/// the median and the cv.
inline auto min_of(const std::vector<double>& v) -> double {
  return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}

/// `n` floats drawn from N(0, stddev^2) with a fixed seed, so every run sees the same inputs.
[[nodiscard]] inline auto random_floats(std::size_t n, std::uint32_t seed, float stddev = 1.0F)
    -> std::vector<float> {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0F, stddev);
  std::vector<float> out(n);
  for (auto& x : out) {
    x = dist(rng);
  }
  return out;
}

/// Random q, k, v for `length` tokens: q [length, n_head_q, head_dim], k and v
/// [length, n_head_kv, head_dim], row-major (the cache's prefill layout).
struct qkv {
  std::size_t length = 0;
  std::size_t n_head_q = 0;
  std::size_t n_head_kv = 0;
  std::size_t head_dim = 0;
  std::vector<float> q;
  std::vector<float> k;
  std::vector<float> v;
};

[[nodiscard]] inline auto make_qkv(std::size_t length, std::size_t n_head_q, std::size_t n_head_kv,
                                   std::size_t head_dim, std::uint32_t seed) -> qkv {
  return {length,
          n_head_q,
          n_head_kv,
          head_dim,
          random_floats(length * n_head_q * head_dim, seed),
          random_floats(length * n_head_kv * head_dim, seed + 1),
          random_floats(length * n_head_kv * head_dim, seed + 2)};
}

/// Token classes of a synthetic prompt: position 0 special (BOS), about one token in nine
/// punctuation, the rest none. Only the special and punctuation candidates read them.
[[nodiscard]] inline auto synthetic_classes(std::size_t length) -> std::vector<token_class> {
  std::vector<token_class> out(length, token_class::none);
  for (std::size_t j = 8; j < length; j += 9) {
    out[j] = token_class::punctuation;
  }
  if (length > 0) {
    out[0] = token_class::special;
  }
  return out;
}

} // namespace kvsieve::bench
