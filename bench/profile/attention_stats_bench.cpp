// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The cost of FastGen's profiling (§3.3, Algorithm 1) on the host:
//   BM_prefill_group_stats/length:L/head_dim:d   causal attention of one KV head group (4 query
//       heads over one KV head) with head_stats accumulated row by row, as adaptive_cache::prefill
//       runs it (score, recovery columns and one near_w per ladder window);
//   BM_prefill_group_plain/length:L/head_dim:d   the raw baseline: the same causal_attention with
//       a no-op row callback. The ratio of the two is the statistics' overhead.
//   BM_measure_candidates/length:L               given the group's statistics, combine_scores +
//       measure_candidates over FastGen's 5-candidate ladder + the recovery profiler's choice:
//       what choosing a policy for one KV head costs once the attention is done.
// items_per_second counts prompt tokens.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include <kvsieve/attention/prefill.hpp>
#include <kvsieve/policy/fastgen.hpp>
#include <kvsieve/profile/attention_stats.hpp>
#include <kvsieve/profile/candidates.hpp>
#include <kvsieve/profile/recovery_profiler.hpp>

#include "common/bench_common.hpp"

namespace {

using namespace kvsieve;

constexpr std::int32_t group = 4; // query heads per KV head (8 over 2, GQA)

/// One KV head group's prompt: q [L, group, d], k and v [L, 1, d], out [L, group, d].
struct group_prompt {
  std::int32_t length;
  std::int32_t head_dim;
  bench::qkv data;
  std::vector<float> out;

  group_prompt(std::int32_t l, std::int32_t d)
      : length(l), head_dim(d),
        data(bench::make_qkv(static_cast<std::size_t>(l), group, 1, static_cast<std::size_t>(d),
                             21)),
        out(data.q.size()) {}

  template <class OnRow>
  void attend(std::int32_t head, std::vector<float>& row, OnRow&& on_row) {
    const auto d = static_cast<std::size_t>(head_dim);
    const auto qh = static_cast<std::size_t>(head);
    const auto stride = static_cast<std::size_t>(group) * d;
    causal_attention({data.q.data() + qh * d, stride}, {data.k.data(), d}, {data.v.data(), d},
                     out.data() + qh * d, stride, length, head_dim,
                     1.0F / std::sqrt(static_cast<float>(head_dim)), row,
                     std::forward<OnRow>(on_row));
  }
};

void set_prompt_counters(benchmark::State& state, std::int32_t length, std::int32_t head_dim) {
  state.SetItemsProcessed(state.iterations() * length);
  // K and V of the head are read once per query row: the prefill's bytes touched.
  const double rows = static_cast<double>(length) * (static_cast<double>(length) + 1.0) / 2.0;
  bench::report_bytes(state, rows * group * 2.0 * static_cast<double>(head_dim) * sizeof(float));
}

void BM_prefill_group_stats(benchmark::State& state) {
  const auto length = static_cast<std::int32_t>(state.range(0));
  const auto head_dim = static_cast<std::int32_t>(state.range(1));
  group_prompt prompt(length, head_dim);
  const auto windows = ladder_windows(make_fastgen_ladder(), length);
  std::vector<head_stats> stats(group);
  std::vector<float> row;
  for (auto _ : state) {
    for (std::int32_t h = 0; h < group; ++h) {
      auto& st = stats[static_cast<std::size_t>(h)];
      st.reset(length, 0, windows);
      prompt.attend(h, row, [&](std::int32_t r, std::span<const float> p) {
        st.accumulate_row(r, p);
      });
    }
    benchmark::DoNotOptimize(prompt.out.data());
    benchmark::DoNotOptimize(stats.data());
    benchmark::ClobberMemory();
  }
  set_prompt_counters(state, length, head_dim);
  state.counters["windows"] = static_cast<double>(windows.size());
}

void BM_prefill_group_plain(benchmark::State& state) {
  const auto length = static_cast<std::int32_t>(state.range(0));
  const auto head_dim = static_cast<std::int32_t>(state.range(1));
  group_prompt prompt(length, head_dim);
  std::vector<float> row;
  for (auto _ : state) {
    for (std::int32_t h = 0; h < group; ++h) {
      prompt.attend(h, row, [](std::int32_t, std::span<const float>) {});
    }
    benchmark::DoNotOptimize(prompt.out.data());
    benchmark::ClobberMemory();
  }
  set_prompt_counters(state, length, head_dim);
}

/// A group's statistics for a prompt of `length` tokens, accumulated from synthetic attention
/// rows (a sink, a recent peak and a flat floor, normalised) instead of a real O(L^2 d) prefill:
/// measure_candidates reads the statistics, never the rows. Built once per length.
auto synthetic_stats(std::int32_t length, std::span<const std::int32_t> windows)
    -> const std::vector<head_stats>& {
  static std::map<std::int32_t, std::vector<head_stats>> built;
  auto [it, fresh] = built.try_emplace(length);
  if (!fresh) {
    return it->second;
  }
  auto& stats = it->second;
  stats.resize(group);
  const auto n = static_cast<std::size_t>(length);
  std::vector<float> p(n);
  std::vector<float> decay(n); // weight by distance i - j
  for (std::int32_t h = 0; h < group; ++h) {
    auto& st = stats[static_cast<std::size_t>(h)];
    st.reset(length, 0, windows);
    for (std::size_t dist = 0; dist < n; ++dist) {
      decay[dist] = 1.0F + 8.0F * std::exp(-static_cast<float>(dist) /
                                           static_cast<float>(4 + 4 * h));
    }
    for (std::int32_t i = 0; i < length; ++i) {
      float sum = 0.0F;
      for (std::int32_t j = 0; j <= i; ++j) {
        const float x = decay[static_cast<std::size_t>(i - j)] + (j == 0 ? 16.0F : 0.0F);
        p[static_cast<std::size_t>(j)] = x;
        sum += x;
      }
      for (std::int32_t j = 0; j <= i; ++j) {
        p[static_cast<std::size_t>(j)] /= sum;
      }
      st.accumulate_row(i, std::span<const float>(p.data(), static_cast<std::size_t>(i) + 1));
    }
  }
  return stats;
}

void BM_measure_candidates(benchmark::State& state) {
  const auto length = static_cast<std::int32_t>(state.range(0));
  const auto ladder = make_fastgen_ladder();
  const auto windows = ladder_windows(ladder, length);
  const std::span<const head_stats> stats = synthetic_stats(length, windows);
  const auto classes = bench::synthetic_classes(static_cast<std::size_t>(length));
  const recovery_profiler profiler(0.95);
  std::vector<double> scores;
  std::vector<keep_reason> reasons;
  std::vector<std::int32_t> scratch;
  candidate_scores candidates;
  std::size_t choice = 0;
  for (auto _ : state) {
    combine_scores(stats, group_reduce::mean, scores);
    measure_candidates(ladder, stats, group_reduce::mean, classes, scores, 0, reasons, scratch,
                       candidates);
    choice = profiler(candidates);
    benchmark::DoNotOptimize(choice);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * length);
  state.counters["choice"] = static_cast<double>(choice);
  state.counters["kept_fraction"] =
      static_cast<double>(candidates.kept[choice]) / static_cast<double>(length);
}

BENCHMARK(BM_prefill_group_stats)
    ->ArgsProduct({{256, 512, 1024, 2048}, {64, 128}})
    ->ArgNames({"length", "head_dim"})
    ->Unit(benchmark::kMillisecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK(BM_prefill_group_plain)
    ->ArgsProduct({{256, 512, 1024, 2048}, {64, 128}})
    ->ArgNames({"length", "head_dim"})
    ->Unit(benchmark::kMillisecond)
    ->ComputeStatistics("min", bench::min_of);
BENCHMARK(BM_measure_candidates)
    ->ArgsProduct({{256, 1024, 4096, 16384}})
    ->ArgNames({"length"})
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", bench::min_of);

} // namespace
