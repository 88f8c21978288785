// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Host decode attention over one paged head: the `group` query heads that share the KV head
/// attend over all of its resident tokens, reading each key and value row once for the whole
/// group. Also returns each token's probability combined over the group, from which the cache
/// accumulates the frequent policy's score without a second pass over K.

#include <algorithm>
#include <concepts>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <kvsieve/core/group.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/store/paged_store.hpp>

namespace kvsieve {

/// Scratch reused across calls so a decode step allocates nothing once warm.
struct decode_scratch {
  std::vector<float> probs; // [group, size]
  std::vector<float> row;   // [head_dim]: one K or V row converted to float
};

namespace detail {
/// A float view of a stored row: the row itself for float storage, a converted copy otherwise.
template <storage_element T>
inline auto as_float_row(const T* src, std::size_t d, std::vector<float>& buf) -> const float* {
  if constexpr (std::same_as<T, float>) {
    return src;
  } else {
    for (std::size_t c = 0; c < d; ++c) {
      buf[c] = load_float(src[c]);
    }
    return buf.data();
  }
}
} // namespace detail

/// q: [group, head_dim] floats; out: [group, head_dim]; prob: [size(h)] receives each token's
/// attention probability combined over the group (mean or max). A head with no tokens gives
/// zeros. Complexity O(size * head_dim * group); K and V are each read once.
template <storage_element T, memory_space Space>
void attend_paged(const paged_store<T, Space>& store, head_id h, const float* q, float* out,
                  std::int32_t group, float scale, group_reduce reduce, decode_scratch& scratch,
                  std::span<float> prob) {
  const auto d = static_cast<std::size_t>(store.geometry().head_dim);
  const auto g = static_cast<std::size_t>(group);
  const auto n = static_cast<std::size_t>(store.size(h));
  const std::int32_t pages = store.page_count(h);
  const auto page_size = static_cast<std::size_t>(store.geometry().page_size);
  std::fill(out, out + g * d, 0.0F);
  if (n == 0) {
    return;
  }
  auto& probs = scratch.probs;
  probs.resize(g * n);
  scratch.row.resize(d);
  // Pass 1 over K: logits of every query head of the group.
  for (std::int32_t p = 0; p < pages; ++p) {
    const auto page = store.page(h, p);
    const std::size_t first = static_cast<std::size_t>(p) * page_size;
    for (std::size_t t = 0; t < static_cast<std::size_t>(page.count); ++t) {
      const float* k = detail::as_float_row(page.keys + t * d, d, scratch.row);
      for (std::size_t qh = 0; qh < g; ++qh) {
        const float* qv = q + qh * d;
        float dot = 0.0F;
        for (std::size_t c = 0; c < d; ++c) {
          dot += qv[c] * k[c];
        }
        probs[qh * n + first + t] = dot * scale;
      }
    }
  }
  // Softmax per query head, then the group's combined probability per token.
  for (std::size_t qh = 0; qh < g; ++qh) {
    float* l = probs.data() + qh * n;
    const float m = *std::max_element(l, l + n);
    float sum = 0.0F;
    for (std::size_t j = 0; j < n; ++j) {
      l[j] = std::exp(l[j] - m);
      sum += l[j];
    }
    const float inv = 1.0F / sum;
    for (std::size_t j = 0; j < n; ++j) {
      l[j] *= inv;
    }
  }
  for (std::size_t j = 0; j < n; ++j) {
    float agg = 0.0F;
    for (std::size_t qh = 0; qh < g; ++qh) {
      const float x = probs[qh * n + j];
      agg = reduce == group_reduce::mean ? agg + x : std::max(agg, x);
    }
    prob[j] = reduce == group_reduce::mean ? agg / static_cast<float>(g) : agg;
  }
  // Pass 2 over V.
  for (std::int32_t p = 0; p < pages; ++p) {
    const auto page = store.page(h, p);
    const std::size_t first = static_cast<std::size_t>(p) * page_size;
    for (std::size_t t = 0; t < static_cast<std::size_t>(page.count); ++t) {
      const float* v = detail::as_float_row(page.values + t * d, d, scratch.row);
      for (std::size_t qh = 0; qh < g; ++qh) {
        const float w = probs[qh * n + first + t];
        float* o = out + qh * d;
        for (std::size_t c = 0; c < d; ++c) {
          o[c] += w * v[c];
        }
      }
    }
  }
}

} // namespace kvsieve
