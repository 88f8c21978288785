// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Host decode attention over one head of any host_kv_store: the `group` query heads that share
/// the KV head attend over all of its resident tokens, reading each key and value row once for
/// the whole group. Also returns each token's probability combined over the group, from which the cache
/// accumulates the frequent policy's score without a second pass over K.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <kvsieve/attention/detail/kernels.hpp>
#include <kvsieve/core/group.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/store/concepts.hpp>

namespace kvsieve {

/// Scratch reused across calls so a decode step allocates nothing once warm.
struct decode_scratch {
  std::vector<float> probs;                // [group, size]
  std::vector<float> state;                // [(pages + 2) * group]: online softmax state
  std::vector<detail::kv_page_ref> pages;  // the head's pages, in order
};

/// q: [group, head_dim] floats; out: [group, head_dim]; prob: [size(h)] receives each token's
/// attention probability combined over the group (mean or max). A head with no tokens gives
/// zeros. Complexity O(size * head_dim * group); K and V are each read once, by SIMD kernels
/// chosen for the CPU at run time (attention/detail/kernels.hpp). Not thread-safe for one
/// scratch; distinct heads with distinct scratch may run concurrently. Pages are read in order,
/// whatever their sizes: page boundaries only change where the online softmax rescales, so two
/// stores that page a head the same way give bit-identical results.
template <host_kv_store Store>
void attend_paged(const Store& store, head_id h, const float* q, float* out, std::int32_t group,
                  float scale, group_reduce reduce, decode_scratch& scratch,
                  std::span<float> prob) {
  const auto d = static_cast<std::size_t>(store.geometry().head_dim);
  const auto g = static_cast<std::size_t>(group);
  const auto n = static_cast<std::size_t>(store.size(h));
  if (n == 0) {
    std::fill(out, out + g * d, 0.0F);
    return;
  }
  const std::int32_t pages = store.page_count(h);
  scratch.pages.clear();
  for (std::int32_t p = 0; p < pages; ++p) {
    const auto page = store.page(h, p);
    scratch.pages.push_back({page.keys, page.values, static_cast<std::size_t>(page.count)});
  }
  scratch.probs.resize(g * n);
  scratch.state.resize((scratch.pages.size() + 2) * g);
  detail::decode_kernel<typename Store::value_type>({.pages = scratch.pages.data(),
                                                    .n_pages = scratch.pages.size(),
                                                    .n = n,
                                                    .head_dim = d,
                                                    .group = g,
                                                    .q = q,
                                                    .scale = scale,
                                                    .reduce_max = reduce == group_reduce::worst,
                                                    .probs = scratch.probs.data(),
                                                    .state = scratch.state.data(),
                                                    .out = out,
                                                    .prob = prob.data()});
}

} // namespace kvsieve
