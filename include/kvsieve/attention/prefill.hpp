// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Host causal attention for a prompt, one query head at a time, one row at a time: O(L) extra
/// memory, and each row's probabilities are handed to a callback, which is where the profiler's
/// statistics are accumulated (fused, so A is never stored; FastGen Algorithm 1).

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <kvsieve/attention/detail/kernels.hpp>

namespace kvsieve {

/// Strided rows of a [L, n_head, head_dim] tensor for one head.
struct head_rows {
  const float* data; // row i at data + i * stride
  std::size_t stride;
};

/// out[i] = softmax(scale * q[i] . k[j], j <= i) . v[j] for i in [0, length).
/// Calls on_row(i, span p) with p[j] = A[i, j], j in [0, i], after each row, in row order.
/// `p` is scratch (resized to length). Complexity O(length^2 * head_dim), by SIMD kernels chosen
/// for the CPU at run time (attention/detail/kernels.hpp).
template <class OnRow>
void causal_attention(head_rows q, head_rows k, head_rows v, float* out, std::size_t out_stride,
                      std::int32_t length, std::int32_t head_dim, float scale,
                      std::vector<float>& p, OnRow&& on_row) {
  const auto d = static_cast<std::size_t>(head_dim);
  p.resize(static_cast<std::size_t>(length));
  for (std::int32_t i = 0; i < length; ++i) {
    const auto row = static_cast<std::size_t>(i);
    detail::prefill_row_kernel({.q = q.data + row * q.stride,
                                .k = k.data,
                                .k_stride = k.stride,
                                .v = v.data,
                                .v_stride = v.stride,
                                .count = row + 1,
                                .head_dim = d,
                                .scale = scale,
                                .p = p.data(),
                                .out = out + row * out_stride});
    on_row(i, std::span<const float>(p.data(), row + 1));
  }
}

} // namespace kvsieve
