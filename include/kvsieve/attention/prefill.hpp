// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Host causal attention for a prompt, one query head at a time, one row at a time: O(L) extra
/// memory, and each row's probabilities are handed to a callback, which is where the profiler's
/// statistics are accumulated (fused, so A is never stored; FastGen Algorithm 1).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace kvsieve {

/// Strided rows of a [L, n_head, head_dim] tensor for one head.
struct head_rows {
  const float* data; // row i at data + i * stride
  std::size_t stride;
};

/// out[i] = softmax(scale * q[i] . k[j], j <= i) . v[j] for i in [0, length).
/// Calls on_row(i, span p) with p[j] = A[i, j], j in [0, i], after each row.
/// `p` is scratch (resized to length). Complexity O(length^2 * head_dim).
template <class OnRow>
void causal_attention(head_rows q, head_rows k, head_rows v, float* out, std::size_t out_stride,
                      std::int32_t length, std::int32_t head_dim, float scale,
                      std::vector<float>& p, OnRow&& on_row) {
  const auto d = static_cast<std::size_t>(head_dim);
  p.resize(static_cast<std::size_t>(length));
  for (std::int32_t i = 0; i < length; ++i) {
    const float* qi = q.data + static_cast<std::size_t>(i) * q.stride;
    float max_logit = -std::numeric_limits<float>::infinity();
    for (std::int32_t j = 0; j <= i; ++j) {
      const float* kj = k.data + static_cast<std::size_t>(j) * k.stride;
      float dot = 0.0F;
      for (std::size_t c = 0; c < d; ++c) {
        dot += qi[c] * kj[c];
      }
      p[static_cast<std::size_t>(j)] = dot * scale;
      max_logit = std::max(max_logit, dot * scale);
    }
    float sum = 0.0F;
    for (std::int32_t j = 0; j <= i; ++j) {
      auto& x = p[static_cast<std::size_t>(j)];
      x = std::exp(x - max_logit);
      sum += x;
    }
    const float inv = 1.0F / sum;
    float* oi = out + static_cast<std::size_t>(i) * out_stride;
    std::fill(oi, oi + d, 0.0F);
    for (std::int32_t j = 0; j <= i; ++j) {
      auto& x = p[static_cast<std::size_t>(j)];
      x *= inv;
      const float* vj = v.data + static_cast<std::size_t>(j) * v.stride;
      for (std::size_t c = 0; c < d; ++c) {
        oi[c] += x * vj[c];
      }
    }
    on_row(i, std::span<const float>(p.data(), static_cast<std::size_t>(i) + 1));
  }
}

} // namespace kvsieve
