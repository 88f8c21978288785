// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The raw baseline of the decode benchmarks (mdspan's raw-vs-abstraction pairs): one layer's K
/// and V as plain contiguous arrays, no pages, no metadata, no policy, no scores, and the same
/// arithmetic as kvsieve::attend_paged (float accumulation, K and V rows converted from the
/// storage element once per row and shared by the query heads of a group). What the cache costs
/// beyond this pair is the price of the abstraction plus FastGen's bookkeeping.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <kvsieve/core/numeric.hpp>

#include "bench_common.hpp"

namespace kvsieve::bench {

/// Decode attention of `group` query heads over `n` contiguous tokens of one KV head.
/// k, v: [n, d] of T; q, out: [group, d]; logits: scratch of group * n; row: scratch of d.
template <storage_element T>
void raw_attend(const T* k, const T* v, std::size_t n, std::size_t d, const float* q, float* out,
                std::size_t group, float scale, std::vector<float>& logits,
                std::vector<float>& row) {
  logits.resize(group * n);
  row.resize(d);
  std::fill(out, out + group * d, 0.0F);
  auto float_row = [&](const T* src) -> const float* {
    if constexpr (std::is_same_v<T, float>) {
      return src;
    } else {
      for (std::size_t c = 0; c < d; ++c) {
        row[c] = load_float(src[c]);
      }
      return row.data();
    }
  };
  for (std::size_t t = 0; t < n; ++t) { // pass 1 over K
    const float* kr = float_row(k + t * d);
    for (std::size_t h = 0; h < group; ++h) {
      const float* qv = q + h * d;
      float dot = 0.0F;
      for (std::size_t c = 0; c < d; ++c) {
        dot += qv[c] * kr[c];
      }
      logits[h * n + t] = dot * scale;
    }
  }
  for (std::size_t h = 0; h < group; ++h) { // softmax per query head
    float* l = logits.data() + h * n;
    const float m = *std::max_element(l, l + n);
    float sum = 0.0F;
    for (std::size_t t = 0; t < n; ++t) {
      l[t] = std::exp(l[t] - m);
      sum += l[t];
    }
    const float inv = 1.0F / sum;
    for (std::size_t t = 0; t < n; ++t) {
      l[t] *= inv;
    }
  }
  for (std::size_t t = 0; t < n; ++t) { // pass 2 over V
    const float* vr = float_row(v + t * d);
    for (std::size_t h = 0; h < group; ++h) {
      const float w = logits[h * n + t];
      float* o = out + h * d;
      for (std::size_t c = 0; c < d; ++c) {
        o[c] += w * vr[c];
      }
    }
  }
}

/// One layer's contiguous KV cache holding exactly `tokens` tokens per KV head:
/// k_, v_: [n_head_kv, tokens, head_dim] of T. A decode step writes the new token's K and V into
/// a ring slot (the append) and attends over all `tokens`, so the token count, and with it the
/// cost, stays fixed however many steps a benchmark runs.
template <storage_element T>
class raw_kv_cache {
public:
  raw_kv_cache(std::size_t kv_heads, std::size_t dim, std::size_t tokens, std::uint32_t seed)
      : n_head_kv_(kv_heads), head_dim_(dim), tokens_(tokens), k_(kv_heads * tokens * dim),
        v_(k_.size()) {
    const auto ks = random_floats(k_.size(), seed);
    const auto vs = random_floats(v_.size(), seed + 1);
    for (std::size_t i = 0; i < k_.size(); ++i) {
      k_[i] = store_as<T>(ks[i]);
      v_[i] = store_as<T>(vs[i]);
    }
  }

  /// q, out: [n_head_kv * group, head_dim]; k, v: [n_head_kv, head_dim] (the new token).
  void step(const float* q, const float* k, const float* v, float* out, std::size_t group,
            float scale) {
    const std::size_t d = head_dim_;
    for (std::size_t h = 0; h < n_head_kv_; ++h) {
      T* kh = k_.data() + h * tokens_ * d;
      T* vh = v_.data() + h * tokens_ * d;
      for (std::size_t c = 0; c < d; ++c) {
        kh[next_ * d + c] = store_as<T>(k[h * d + c]);
        vh[next_ * d + c] = store_as<T>(v[h * d + c]);
      }
      raw_attend(kh, vh, tokens_, d, q + h * group * d, out + h * group * d, group, scale,
                 logits_, row_);
    }
    next_ = next_ + 1 == tokens_ ? 0 : next_ + 1;
  }

  [[nodiscard]] auto tokens() const noexcept -> std::size_t { return tokens_; }
  /// K and V bytes one step reads: every token of every KV head.
  [[nodiscard]] auto kv_bytes() const noexcept -> std::size_t {
    return 2 * n_head_kv_ * tokens_ * head_dim_ * sizeof(T);
  }

private:
  std::size_t n_head_kv_;
  std::size_t head_dim_;
  std::size_t tokens_;
  std::size_t next_ = 0;
  std::vector<T> k_; // [n_head_kv, tokens, head_dim]
  std::vector<T> v_; // [n_head_kv, tokens, head_dim]
  std::vector<float> logits_;
  std::vector<float> row_;
};

} // namespace kvsieve::bench
