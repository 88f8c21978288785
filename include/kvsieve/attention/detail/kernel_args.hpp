// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Arguments of the host attention kernels (attention/detail/kernels.hpp). Plain structs of
/// pointers and sizes, so that one function signature per element type serves every SIMD target.
/// Not API.

#include <cstddef>

namespace kvsieve::detail {

/// One page of a head: `count` rows of head_dim elements each, contiguous.
struct kv_page_ref {
  const void* keys;   // [count, head_dim] of the store's element type
  const void* values; // [count, head_dim]
  std::size_t count;
};

/// Decode attention of `group` query heads over the pages of one KV head (n tokens in all).
struct decode_args {
  const kv_page_ref* pages;
  std::size_t n_pages;
  std::size_t n;         // sum of pages[*].count, > 0
  std::size_t head_dim;
  std::size_t group;
  const float* q;        // [group, head_dim]
  float scale;
  bool reduce_max;       // group_reduce::worst: prob is the group's max, else its mean
  float* probs;          // [group, n]: each query head's probabilities (scratch)
  float* state;          // [(n_pages + 2) * group] scratch: running max and sum, page maxima
  float* out;            // [group, head_dim]
  float* prob;           // [n]
};

/// Row i of causal attention for one query head: p[j] = softmax_j(scale q . k_j), j < count,
/// and out = sum_j p[j] v_j. Rows of k and v are `stride` floats apart.
struct prefill_row_args {
  const float* q;        // [head_dim]
  const float* k;        // row j at k + j * k_stride
  std::size_t k_stride;
  const float* v;        // row j at v + j * v_stride
  std::size_t v_stride;
  std::size_t count;     // i + 1, > 0
  std::size_t head_dim;
  float scale;
  float* p;              // [count]
  float* out;            // [head_dim]
};

} // namespace kvsieve::detail
