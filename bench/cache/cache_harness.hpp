// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The harness of the cache benchmarks: one layer of a GQA model (8 query heads over 2 KV heads,
/// head_dim 128, pages of 16 tokens), random prompts and decode inputs, and decode_pool, which
/// hands the decode benchmark caches whose context stays near a target length however many steps
/// Google Benchmark decides to run.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <kvsieve/cache/adaptive_cache.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/core/tensor.hpp>
#include <kvsieve/policy/fastgen.hpp>
#include <kvsieve/profile/recovery_profiler.hpp>
#include <kvsieve/store/paged_store.hpp>

#include "common/bench_common.hpp"

namespace kvsieve::bench {

constexpr std::int32_t n_head_q = 8;
constexpr std::int32_t n_head_kv = 2;
constexpr std::int32_t head_dim = 128;
constexpr std::int32_t page_size = 16;
constexpr auto hq = static_cast<std::size_t>(n_head_q);
constexpr auto hkv = static_cast<std::size_t>(n_head_kv);
constexpr auto hd = static_cast<std::size_t>(head_dim);

[[nodiscard]] inline auto layer_geometry(std::int32_t n_seq) -> store_geometry {
  return {.n_seq = n_seq, .n_layer = 1, .n_head_kv = n_head_kv, .head_dim = head_dim,
          .page_size = page_size};
}

[[nodiscard]] inline auto layer_options() -> cache_options {
  cache_options o;
  o.n_head_q = n_head_q;
  return o;
}

template <candidate_ladder Ladder, storage_element T>
using layer_cache = adaptive_cache<Ladder, recovery_profiler, paged_store<T>>;

/// Decode inputs for `size` steps, used in turn: q [size, n_head_q, head_dim], k and v
/// [size, n_head_kv, head_dim].
class step_bank {
public:
  explicit step_bank(std::size_t size = 64, std::uint32_t seed = 31)
      : data_(make_qkv(size, hq, hkv, hd, seed)) {}

  /// The next step's q, k, v and an output buffer, as the cache's decode takes them.
  struct step {
    tensor_view<const float, 2> q;
    tensor_view<const float, 2> k;
    tensor_view<const float, 2> v;
  };
  auto next() -> step {
    const std::size_t i = next_;
    next_ = next_ + 1 == data_.length ? 0 : next_ + 1;
    return {{data_.q.data() + i * hq * hd, {hq, hd}},
            {data_.k.data() + i * hkv * hd, {hkv, hd}},
            {data_.v.data() + i * hkv * hd, {hkv, hd}}};
  }

private:
  qkv data_;
  std::size_t next_ = 0;
};

/// A cache of `n_seq` sequences (one layer each) that are all brought to `start` tokens; the
/// decode benchmark then steps one sequence `slack` times, moves to the next, and asks for a
/// rebuild (outside the timed region) once every sequence has been used. The context seen by the
/// timed steps is thus [start, start + slack), mean `start + slack / 2`: the target.
/// Building a sequence: prefill a short prompt (at most 16 tokens, so policies that keep few
/// tokens also grow cheaply), then decode steps up to `start`.
template <candidate_ladder Ladder, storage_element T>
class decode_pool {
public:
  using cache_type = layer_cache<Ladder, T>;

  decode_pool(Ladder ladder, std::int32_t n_seq, std::int32_t start, std::int32_t slack)
      : cache_(std::move(ladder), recovery_profiler(0.95), layer_geometry(n_seq),
               layer_options()),
        n_seq_(n_seq), start_(start), slack_(slack) {}

  /// Rebuilds every sequence from an empty state to `start` tokens.
  void rebuild() {
    for (std::int32_t s = 0; s < n_seq_; ++s) {
      cache_.release(s);
      prefill_prompt(s);
      grow(s, start_);
    }
    seq_ = 0;
    used_ = 0;
    ++rebuilds_;
  }

  [[nodiscard]] auto exhausted() const noexcept -> bool { return seq_ == n_seq_; }

  /// One timed decode step (call only when !exhausted()).
  void step() {
    const auto in = bank_.next();
    cache_.decode(seq_, 0, in.q, in.k, in.v, token_class::none, {out_.data(), {hq, hd}});
    // O(1) reads of the state the step left, for the counters.
    for (std::int32_t h = 0; h < n_head_kv; ++h) {
      resident_sum_ += cache_.store().size({seq_, 0, h});
    }
    length_sum_ += cache_.length(seq_, 0);
    ++steps_;
    if (++used_ == slack_) {
      ++seq_;
      used_ = 0;
    }
  }

  /// Counters of the steps since the last reset: mean resident tokens per KV head, mean context
  /// length, K and V bytes read per step (one layer), rebuilds.
  void reset_counters() {
    resident_sum_ = 0;
    length_sum_ = 0;
    steps_ = 0;
    rebuilds_ = 0;
  }
  [[nodiscard]] auto mean_kept() const -> double {
    return steps_ == 0 ? 0.0
                       : static_cast<double>(resident_sum_) /
                             (static_cast<double>(steps_) * static_cast<double>(n_head_kv));
  }
  [[nodiscard]] auto mean_context() const -> double {
    return steps_ == 0 ? 0.0
                       : static_cast<double>(length_sum_) / static_cast<double>(steps_);
  }
  [[nodiscard]] auto kv_bytes_per_step() const -> double {
    return mean_kept() * static_cast<double>(n_head_kv) *
           static_cast<double>(cache_.store().kv_bytes_per_token());
  }
  [[nodiscard]] auto rebuilds() const noexcept -> std::int64_t { return rebuilds_; }
  [[nodiscard]] auto n_seq() const noexcept -> std::int32_t { return n_seq_; }
  [[nodiscard]] auto start() const noexcept -> std::int32_t { return start_; }
  [[nodiscard]] auto cache() const noexcept -> const cache_type& { return cache_; }

private:
  static constexpr std::int32_t max_prompt = 16;

  void prefill_prompt(std::int32_t s) {
    const std::int32_t len = std::min(start_, max_prompt);
    if (prompt_.length != static_cast<std::size_t>(len)) {
      prompt_ = make_qkv(static_cast<std::size_t>(len), hq, hkv, hd, 41);
      prompt_out_.resize(prompt_.q.size());
    }
    const auto l = static_cast<std::size_t>(len);
    const auto classes = synthetic_classes(l);
    cache_.prefill(s, 0, {prompt_.q.data(), {l, hq, hd}}, {prompt_.k.data(), {l, hkv, hd}},
                   {prompt_.v.data(), {l, hkv, hd}}, classes,
                   {prompt_out_.data(), {l, hq, hd}});
  }

  void grow(std::int32_t s, std::int32_t target) {
    while (cache_.length(s, 0) < target) {
      const auto in = bank_.next();
      cache_.decode(s, 0, in.q, in.k, in.v, token_class::none, {out_.data(), {hq, hd}});
    }
  }

  cache_type cache_;
  std::int32_t n_seq_;
  std::int32_t start_;
  std::int32_t slack_;
  std::int32_t seq_ = 0;  // sequence the next step decodes
  std::int32_t used_ = 0; // steps already taken on it
  step_bank bank_;
  qkv prompt_;
  std::vector<float> prompt_out_;
  std::vector<float> out_ = std::vector<float>(hq * hd);
  std::int64_t resident_sum_ = 0;
  std::int64_t length_sum_ = 0;
  std::int64_t steps_ = 0;
  std::int64_t rebuilds_ = 0;
};

/// Steps one sequence may take before the next is used: 1/16 of the context, at least 16.
[[nodiscard]] constexpr auto decode_slack(std::int32_t context) -> std::int32_t {
  return std::max(context / 16, 16);
}

/// The pool for (ladder, T, key, context), built on first use and kept for the rest of the
/// program: Google Benchmark calls a benchmark function once per run and repetition, and with
/// --benchmark_enable_random_interleaving the contexts come in any order, so every context keeps
/// its own pool (a few hundred MB in all for the default sweep).
/// `keep_fraction` sizes the pool: a step is estimated at about 1 us per resident token on the
/// host (8 query heads, head_dim 128), and the pool should serve about two runs of 0.5 s before
/// a rebuild.
template <candidate_ladder Ladder, storage_element T>
auto acquire_pool(int key, const Ladder& ladder, std::int32_t context, double keep_fraction)
    -> decode_pool<Ladder, T>& {
  static std::map<std::pair<int, std::int32_t>, std::unique_ptr<decode_pool<Ladder, T>>> pools;
  auto& pool = pools[{key, context}];
  if (!pool) {
    const std::int32_t slack = decode_slack(context);
    constexpr double seconds_per_token = 1e-6;
    constexpr double seconds_overhead = 5e-6;
    const double step_seconds =
        keep_fraction * static_cast<double>(context) * seconds_per_token + seconds_overhead;
    const double steps_wanted = 1.2 / step_seconds;
    const auto n_seq = static_cast<std::int32_t>(
        std::clamp(std::ceil(steps_wanted / static_cast<double>(slack)), 1.0, 256.0));
    pool = std::make_unique<decode_pool<Ladder, T>>(ladder, n_seq, context - slack / 2, slack);
    pool->rebuild();
  }
  pool->reset_counters();
  return *pool;
}

} // namespace kvsieve::bench
