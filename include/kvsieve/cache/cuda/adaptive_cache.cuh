// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// kvsieve::cuda::adaptive_cache<Ladder, Profiler, T>: FastGen on the GPU, the same algorithm as
/// the host adaptive_cache (cache/adaptive_cache.hpp), with device pointers.
///   prefill: fused causal attention + profiling statistics (attention/cuda/prefill.cuh), one
///     download of the O(L) statistics, the host head_planner (the very code the host cache runs,
///     so both backends choose alike), then one compaction pass into the device store.
///   decode: a batch of sequences at one layer in four launches and no host sync:
///     step_append (new token into every head, all-or-nothing on pages), decode_attention (split
///     KV over ragged heads), decode_merge, step_update (scores, window leavers, budget
///     overflow, swap-with-last compaction, page reclamation). Policies are evaluated on the
///     device: their keeps/window/budget are constexpr, so a user's policy runs there unchanged.
/// Errors: argument errors throw at once. A device out-of-memory during decode cannot be seen
/// without a sync; the failing step changes nothing on the device (its output is invalid) and the
/// next call on this cache (or synchronize()) throws errc::out_of_memory.
/// Not thread-safe; all work is ordered on the cache's stream.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/attention/cuda/decode.cuh>
#include <kvsieve/attention/cuda/prefill.cuh>
#include <kvsieve/cache/options.hpp>
#include <kvsieve/core/cuda/numeric.cuh>
#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/core/error.hpp>
#include <kvsieve/policy/ladder.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/profile/candidates.hpp>
#include <kvsieve/profile/concepts.hpp>
#include <kvsieve/profile/plan.hpp>
#include <kvsieve/store/cuda/paged_store.cuh>

namespace kvsieve::cuda {

/// Per-step values of a batch that only the host knows (the new tokens' classes), by value.
struct step_tokens {
  token_class cls[max_batch] = {};
};

namespace detail {

/// A head's policy at one step, evaluated on the device from the ladder itself.
struct step_rule {
  bool rule = false;
  std::int32_t window = 0;
  std::int32_t budget = 0;
  score_rule rank{};
};

template <class Ladder, class F, std::size_t... I>
__device__ void visit_candidate(const Ladder& l, std::size_t i, F&& f,
                                std::index_sequence<I...> /*indices*/) {
  ((i == I ? (f(l.template get<I>()), 0) : 0), ...);
}

template <class Ladder>
__device__ auto evaluate(const Ladder& ladder, std::size_t choice, token_info tok,
                         step_context ctx, std::int32_t n_sinks) -> step_rule {
  step_rule r;
  visit_candidate(
      ladder, choice,
      [&](const auto& pol) {
        r.rule = tok.position < n_sinks || pol.keeps(tok, ctx);
        r.window = max(0, min(window_of(pol, ctx), ctx.length));
        r.budget = max(budget_of(pol, ctx), 0);
        static_assert(std::is_same_v<decltype(ranking_of(pol)), score_rule>,
                      "kvsieve::cuda::adaptive_cache: a budget's ranking must be a "
                      "kvsieve::score_rule; custom score_ranking types run on the host cache "
                      "until the device cache is extended to them (the CUDA v2 issue)");
        r.rank = ranking_of(pol);
      },
      std::make_index_sequence<Ladder::size>{});
  return r;
}

/// Device-side state of the cache, by value into the step kernels.
struct cache_state {
  std::uint8_t* choice;        ///< [heads] ladder index
  std::int32_t* window_begin;  ///< [heads] first position of the recent window
  std::int32_t* length;        ///< [n_seq * n_layer] tokens seen
  std::int32_t* prompt_length; ///< [n_seq * n_layer]
  double* kept_fraction_sum;   ///< [n_seq * n_layer] sum over steps of kept / (t * n_head_kv)
  std::int32_t* pair_length;   ///< [pairs] this step's t, written by step_append
  std::int32_t* new_slot;      ///< [pairs] this step's new token slot, -1 if dropped
  int* step_ok;                ///< this step's pages were granted
  int* status;                 ///< mapped host memory: status bits, sticky until read
  std::int32_t n_sinks;
  bool drop_new;               ///< new_token_mode::drop_before_attention
  bool reduce_max;             ///< group_reduce::worst
};

inline constexpr int step_threads = 256;
inline constexpr int update_threads = 128;
inline constexpr int max_evictions = 1024; ///< listed per head and step; more take a slow path

// Step 1: the new token of every pair is appended (or dropped, §6.6), all pages or none.
template <class T, class Ladder>
__global__ void __launch_bounds__(step_threads)
    step_append(store_view<T> s, batch_heads batch, Ladder ladder, cache_state st,
                step_tokens tokens, const float* __restrict__ k, const float* __restrict__ v) {
  __shared__ int need;
  __shared__ int overflow;
  __shared__ int taken;
  const int tid = static_cast<int>(threadIdx.x);
  if (tid == 0) {
    need = 0;
    overflow = 0;
    taken = 0;
  }
  __syncthreads();
  const std::int32_t pairs = batch.pairs();
  for (std::int32_t p = tid; p < pairs; p += step_threads) {
    const std::int32_t head = batch.head(p);
    const std::int32_t b = p / batch.n_head_kv;
    const std::int32_t sl = batch.seq[b] * batch.n_layer + batch.layer;
    const std::int32_t t = st.length[sl] + 1;
    const step_context ctx{t, st.prompt_length[sl]};
    const step_rule r = evaluate(ladder, st.choice[head], token_info{t - 1, tokens.cls[b]}, ctx,
                                 st.n_sinks);
    const std::int32_t n = s.sizes[head];
    const bool drop = st.drop_new && !r.rule && r.window == 0 && r.budget == 0 && n > 0;
    st.pair_length[p] = t;
    st.new_slot[p] = drop ? -1 : n;
    if (!drop && n % s.page_size == 0) {
      atomicAdd(&need, 1);
      if (s.pages_for(n + 1) > s.table_stride) {
        atomicOr(&overflow, 1);
      }
    }
  }
  __syncthreads();
  const std::int32_t top = *s.free_top;
  if (need > top || overflow != 0) {
    if (tid == 0) {
      *st.step_ok = 0;
      atomicOr(st.status, overflow != 0 ? status_overflow : status_oom);
    }
    return;
  }
  for (std::int32_t p = tid; p < pairs; p += step_threads) {
    const std::int32_t n = st.new_slot[p];
    if (n >= 0 && n % s.page_size == 0) {
      const int i = atomicAdd(&taken, 1);
      s.table[static_cast<std::size_t>(batch.head(p)) * s.table_stride + n / s.page_size] =
          s.free_list[top - 1 - i];
    }
  }
  __syncthreads();
  if (tid == 0) {
    *s.free_top = top - need;
    *st.step_ok = 1;
  }
  // One warp per pair writes the row (the page table entries above are visible after the sync).
  constexpr int ve = vec_elems<T>;
  const int warp = tid / 32;
  const int lane = tid % 32;
  for (std::int32_t p = warp; p < pairs; p += step_threads / 32) {
    const std::int32_t n = st.new_slot[p];
    if (n < 0) {
      continue;
    }
    const std::int32_t head = batch.head(p);
    const float* kr = k + static_cast<std::size_t>(p) * s.head_dim;
    const float* vr = v + static_cast<std::size_t>(p) * s.head_dim;
    T* kd = s.key(head, n);
    T* vd = s.value(head, n);
    for (std::int32_t c = lane * ve; c < s.head_dim; c += 32 * ve) {
      store_vec<T>(kd + c, kr + c);
      store_vec<T>(vd + c, vr + c);
    }
    if (lane == 0) {
      *s.position(head, n) = st.pair_length[p] - 1;
      *s.score(head, n) = 0.0F;
      *s.cls(head, n) = tokens.cls[p / batch.n_head_kv];
      *s.reason(head, n) = keep_reason::evicted; // decided by step_update
      s.sizes[head] = n + 1;
    }
  }
}

struct weakest {
  double key;
  std::int32_t position;
  std::int32_t slot;
};

__device__ __forceinline__ auto weaker(const weakest& a, const weakest& b) -> bool {
  if (a.slot < 0) {
    return false;
  }
  if (b.slot < 0) {
    return true;
  }
  return outranks(b.key, b.position, a.key, a.position);
}

// Step 2 (after decode_attention): one block per pair applies FastGen Algorithm 2 exactly as
// detail::finish_step (cache/step_algorithm.hpp) does on the host (see there for the rules), in
// one pass over the head's 4-byte logits, scores, positions and reasons, then compacts and frees
// pages.
template <class T, class Ladder>
__global__ void __launch_bounds__(update_threads)
    step_update(store_view<T> s, batch_heads batch, Ladder ladder, cache_state st,
                step_tokens tokens, std::int32_t group, const float* __restrict__ logits,
                std::int32_t token_stride, const float2* __restrict__ final_ml) {
  __shared__ std::int32_t evicted[max_evictions];
  __shared__ int n_evicted;
  __shared__ int n_budget;
  __shared__ weakest best[update_threads / 32];
  __shared__ std::int32_t moves_from[max_evictions];
  __shared__ int n_moves;
  if (*st.step_ok == 0) {
    return;
  }
  const int tid = static_cast<int>(threadIdx.x);
  const std::int32_t p = static_cast<std::int32_t>(blockIdx.x);
  const std::int32_t head = batch.head(p);
  const std::int32_t b = p / batch.n_head_kv;
  const std::int32_t sl = batch.seq[b] * batch.n_layer + batch.layer;
  const std::int32_t t = st.pair_length[p];
  const std::int32_t pos = t - 1;
  const step_context ctx{t, st.prompt_length[sl]};
  const step_rule r =
      evaluate(ladder, st.choice[head], token_info{pos, tokens.cls[b]}, ctx, st.n_sinks);
  const std::int32_t new_slot = st.new_slot[p];
  const std::int32_t n = s.sizes[head];
  const std::int32_t wb = st.window_begin[head];
  const std::int32_t new_begin = max(wb, t - r.window);
  const std::int32_t leave_end = min(new_begin, pos);
  if (tid == 0) {
    n_evicted = 0;
    n_budget = 0;
  }
  __syncthreads();

  for (std::int32_t i = tid; i < n; i += update_threads) {
    float prob = 0.0F;
    for (std::int32_t g = 0; g < group; ++g) {
      const float2 ml = final_ml[static_cast<std::size_t>(p) * group + g];
      const float x =
          __expf(logits[(static_cast<std::size_t>(p) * group + g) * token_stride + i] - ml.x) /
          ml.y;
      prob = st.reduce_max ? fmaxf(prob, x) : prob + x;
    }
    if (!st.reduce_max) {
      prob /= static_cast<float>(group);
    }
    *s.score(head, i) = r.rank.update(*s.score(head, i), prob);
    const keep_reason old = *s.reason(head, i);
    keep_reason now = old;
    bool demote = false;
    if (i == new_slot) {
      if (r.rule) {
        now = keep_reason::rule;
      } else if (pos >= new_begin) {
        now = keep_reason::window;
      } else {
        demote = true;
      }
    } else {
      const std::int32_t at = *s.position(head, i);
      demote = at >= wb && at < leave_end && old != keep_reason::rule;
    }
    if (demote) {
      now = r.budget > 0 ? keep_reason::budget : keep_reason::evicted;
    }
    if (now != old) {
      *s.reason(head, i) = now;
    }
    if (now == keep_reason::budget) {
      atomicAdd(&n_budget, 1);
    } else if (now == keep_reason::evicted) {
      const int e = atomicAdd(&n_evicted, 1);
      if (e < max_evictions) {
        evicted[e] = i;
      }
    }
  }
  __syncthreads();

  // Budget overflow: the weakest member leaves (lowest key, older on a tie), one at a time; the
  // keys are fixed for the step, so this equals the host's sequence of evictions.
  const int excess = n_budget - r.budget;
  for (int e = 0; e < excess; ++e) {
    weakest mine{0.0, 0, -1};
    for (std::int32_t i = tid; i < n; i += update_threads) {
      if (*s.reason(head, i) != keep_reason::budget) {
        continue;
      }
      const std::int32_t at = *s.position(head, i);
      const weakest c{r.rank.key(*s.score(head, i), at, t), at, i};
      if (weaker(c, mine)) {
        mine = c;
      }
    }
    for (int off = 16; off > 0; off /= 2) {
      weakest other;
      other.key = __shfl_xor_sync(0xffffffffU, mine.key, off);
      other.position = __shfl_xor_sync(0xffffffffU, mine.position, off);
      other.slot = __shfl_xor_sync(0xffffffffU, mine.slot, off);
      if (weaker(other, mine)) {
        mine = other;
      }
    }
    if (tid % 32 == 0) {
      best[tid / 32] = mine;
    }
    __syncthreads();
    if (tid == 0) {
      weakest w = best[0];
      for (int i = 1; i < update_threads / 32; ++i) {
        w = weaker(best[i], w) ? best[i] : w;
      }
      *s.reason(head, w.slot) = keep_reason::evicted;
      if (n_evicted < max_evictions) {
        evicted[n_evicted] = w.slot;
      }
      ++n_evicted;
    }
    __syncthreads();
  }

  const int ne = n_evicted;
  const std::int32_t kept = n - ne;
  if (ne > max_evictions) {
    // More evictions than the list holds (only a policy whose window or budget shrinks sharply
    // gets here): one thread compacts by two pointers. Slow, but the step completes correctly.
    if (tid == 0) {
      std::int32_t lo = 0;
      std::int32_t hi = n - 1;
      while (true) {
        while (lo < hi && *s.reason(head, lo) != keep_reason::evicted) {
          ++lo;
        }
        while (hi > lo && *s.reason(head, hi) == keep_reason::evicted) {
          --hi;
        }
        if (lo >= hi) {
          break;
        }
        s.move_token(head, hi, lo, 0, 1);
        ++lo;
        --hi;
      }
      n_moves = 0;
    }
    __syncthreads();
  } else if (tid == 0) {
    // Dense again: the i-th evicted slot below the new size takes the i-th survivor above it.
    for (int i = 1; i < ne; ++i) { // insertion sort: ne is tiny
      const std::int32_t x = evicted[i];
      int j = i - 1;
      while (j >= 0 && evicted[j] > x) {
        evicted[j + 1] = evicted[j];
        --j;
      }
      evicted[j + 1] = x;
    }
    int e = 0;
    int holes = 0;
    while (holes < ne && evicted[holes] < kept) {
      ++holes;
    }
    std::int32_t from = kept;
    for (int hole = 0; hole < holes; ++hole) {
      while (e < ne && evicted[e] < from) {
        ++e;
      }
      while (e < ne && evicted[e] == from) {
        ++from;
        ++e;
      }
      moves_from[hole] = from++;
    }
    n_moves = holes;
  }
  __syncthreads();
  const int moves = n_moves;
  for (int m = 0; m < moves; ++m) {
    s.move_token(head, moves_from[m], evicted[m], tid, update_threads);
  }
  __syncthreads();
  const std::int32_t pages_before = s.pages_for(n);
  const std::int32_t pages_after = s.pages_for(kept);
  if (tid == 0) {
    const std::int32_t freed = pages_before - pages_after;
    if (freed > 0) {
      const std::int32_t base = atomicAdd(s.free_top, freed);
      for (std::int32_t i = 0; i < freed; ++i) {
        s.free_list[base + i] =
            s.table[static_cast<std::size_t>(head) * s.table_stride + pages_after + i];
      }
    }
    s.sizes[head] = kept;
    st.window_begin[head] = new_begin;
    atomicAdd(&st.kept_fraction_sum[sl],
              static_cast<double>(kept) / (static_cast<double>(t) * batch.n_head_kv));
    if (p % batch.n_head_kv == 0) {
      st.length[sl] = t;
    }
  }
}

} // namespace detail

template <candidate_ladder Ladder, profiler Profiler, storage_element T = bfloat16>
class adaptive_cache {
  static_assert(head_profiler<Profiler> && !layer_profiler<Profiler>,
                "kvsieve::cuda::adaptive_cache: layer-wide profilers (Ada-KV) run on the host cache "
                "until the device cache is extended to them (the CUDA v2 issue)");

public:
  using ladder_type = Ladder;
  using store_type = paged_store<T, cuda_space>;

  /// geometry.max_pages pages are allocated up front; max_context bounds a head's tokens.
  /// Throws like the host cache for bad options, and errc::out_of_memory when the device cannot
  /// hold the pool.
  adaptive_cache(Ladder ladder, Profiler profiler, const store_geometry& geometry,
                 std::int32_t max_context, cache_options options = {},
                 cudaStream_t stream = nullptr)
      : ladder_(std::move(ladder)), profiler_(std::move(profiler)),
        store_(geometry, max_context), opt_(validated(options, geometry)),
        group_(opt_.n_head_q / geometry.n_head_kv), stream_(stream),
        layers_(static_cast<std::size_t>(geometry.n_seq) *
                static_cast<std::size_t>(geometry.n_layer)),
        heads_(store_.n_heads()), choice_(store_.n_heads()), window_begin_(store_.n_heads()),
        length_(layers_.size()), prompt_length_(layers_.size()), kept_sum_(layers_.size()),
        pair_length_(static_cast<std::size_t>(max_batch) *
                     static_cast<std::size_t>(geometry.n_head_kv)),
        new_slot_(pair_length_.size()), step_ok_(1), status_(1) {
    choice_.fill_zero(stream_);
    window_begin_.fill_zero(stream_);
    length_.fill_zero(stream_);
    prompt_length_.fill_zero(stream_);
    kept_sum_.fill_zero(stream_);
    workspace_ = decode_workspace(std::min(geometry.n_seq, max_batch) * geometry.n_head_kv, group_,
                                  geometry.head_dim, static_cast<std::int32_t>(capacity()));
    check(cudaStreamSynchronize(stream_), "adaptive_cache<cuda> construction");
  }

  /// Prompt attention, profiling and compression for one (sequence, layer). Device pointers:
  /// q, out [length, n_head_q, head_dim] and k, v [length, n_head_kv, head_dim] float
  /// (post-RoPE); classes: host [length]. Synchronises once (the statistics come to the host).
  /// Throws: errc::out_of_range, errc::invalid_argument (empty prompt, more than 8 distinct
  /// ladder windows), errc::shape_mismatch, errc::bad_state (already prefilled),
  /// errc::out_of_memory (nothing changed).
  void prefill(std::int32_t seq, std::int32_t layer, const float* q, const float* k,
               const float* v, std::span<const token_class> classes, float* out) {
    raise_pending();
    auto& ls = layer_state(seq, layer);
    const auto n = static_cast<std::int32_t>(classes.size());
    expects(n > 0, errc::invalid_argument, "empty prompt: prefill needs at least one token");
    expects(ls.length == 0, errc::bad_state, [&] {
      return fmt::format("sequence {} layer {} is already prefilled; release({}) first", seq,
                         layer, seq);
    });
    expects(n <= capacity(),
            errc::invalid_argument, [&] {
              return fmt::format("prompt of {} tokens exceeds the cache's max_context", n);
            });
    const auto& g = store_.geometry();
    const auto hq = static_cast<std::size_t>(opt_.n_head_q);
    const auto len = static_cast<std::size_t>(n);
    const auto windows = ladder_windows(ladder_, n);
    expects(ladder_sources(ladder_).empty(), errc::invalid_argument,
            "the CUDA cache sums every prompt row into the scores; a budget ranked from other "
            "rows (TOVA's last row, SnapKV's observation window, a decayed sum) runs on the host "
            "cache until the device prefill is extended to it (the CUDA v2 issue)");
    expects(windows.size() <= 8, errc::invalid_argument,
            "the CUDA prefill accumulates at most 8 distinct ladder windows");
    const std::int32_t first_row = opt_.recovery_rows > 0 ? std::max(0, n - opt_.recovery_rows) : 0;

    const auto t0 = std::chrono::steady_clock::now();
    stats_.reserve_discard(hq * len * (2 + windows.size()));
    prefill_stats ps;
    ps.score = stats_.data();
    ps.colsum = stats_.data() + hq * len;
    ps.near = stats_.data() + 2 * hq * len;
    std::copy(windows.begin(), windows.end(), ps.windows.begin());
    ps.n_windows = static_cast<std::int32_t>(windows.size());
    ps.first_row = first_row;
    prefill_attention<float>(q, k, v, out, n, opt_.n_head_q, g.n_head_kv, g.head_dim, scale(),
                             &ps, stream_);
    host_stats_.resize(hq * len * (2 + windows.size()));
    check(cudaMemcpyAsync(host_stats_.data(), stats_.data(), host_stats_.size() * sizeof(float),
                          cudaMemcpyDeviceToHost, stream_),
          "prefill statistics download");
    check(cudaStreamSynchronize(stream_), "prefill attention");
    const auto t1 = std::chrono::steady_clock::now();

    // Plan every KV head on the host, exactly as the host cache does.
    offsets_.assign(1, 0);
    rows_.clear();
    reasons_.clear();
    scores_.clear();
    std::vector<std::uint8_t> choices(static_cast<std::size_t>(g.n_head_kv));
    std::vector<std::int32_t> begins(choices.size());
    group_stats_.resize(static_cast<std::size_t>(group_));
    const std::size_t first = store_.index({seq, layer, 0});
    for (std::int32_t h = 0; h < g.n_head_kv; ++h) {
      for (std::int32_t i = 0; i < group_; ++i) {
        const auto qh = static_cast<std::size_t>(h * group_ + i);
        // near is [n_head_q][n_windows][L]: one query head's windows are already contiguous.
        const std::size_t nw = windows.size();
        group_stats_[static_cast<std::size_t>(i)].assign(
            first_row, windows, {host_stats_.data() + qh * len, len},
            {host_stats_.data() + hq * len + qh * len, len},
            {host_stats_.data() + 2 * hq * len + qh * nw * len, nw * len});
      }
      const auto& plan = planner_.plan(ladder_, profiler_,
                                       std::span<const head_stats>(group_stats_), opt_.group,
                                       classes, opt_.n_sinks,
                                       head_context{seq, layer, h, g.n_layer, g.n_head_kv, n});
      expects(plan.budget < 0, errc::invalid_argument,
              "the CUDA cache keeps each candidate's own budget; a per-head budget from the "
              "profiler (PyramidKV) runs on the host cache until the device cache is extended "
              "to it (the CUDA v2 issue)");
      auto& hs = heads_[first + static_cast<std::size_t>(h)];
      hs.choice = static_cast<std::uint8_t>(plan.choice);
      hs.recovered = plan.recovered;
      choices[static_cast<std::size_t>(h)] = hs.choice;
      begins[static_cast<std::size_t>(h)] = plan.window_begin;
      for (std::int32_t j = 0; j < n; ++j) {
        const auto r = plan.reasons[static_cast<std::size_t>(j)];
        if (r != keep_reason::evicted) {
          rows_.push_back(j);
          reasons_.push_back(r);
          scores_.push_back(static_cast<float>(plan.scores[static_cast<std::size_t>(j)]));
        }
      }
      offsets_.push_back(static_cast<std::int32_t>(rows_.size()));
    }

    // Compaction: one pass over the prompt's K and V into every head's pages.
    d_offsets_.reserve_discard(offsets_.size());
    d_rows_.reserve_discard(std::max<std::size_t>(rows_.size(), 1));
    d_reasons_.reserve_discard(std::max<std::size_t>(reasons_.size(), 1));
    d_scores_.reserve_discard(std::max<std::size_t>(scores_.size(), 1));
    d_classes_.reserve_discard(len);
    // Every copy is ordered on the cache's stream (which may be a non-blocking one).
    d_offsets_.upload_async(offsets_, 0, stream_);
    d_rows_.upload_async(rows_, 0, stream_);
    d_reasons_.upload_async(reasons_, 0, stream_);
    d_scores_.upload_async(scores_, 0, stream_);
    d_classes_.upload_async(classes, 0, stream_);
    store_.assign_prompt(first, offsets_, d_offsets_.data(), d_rows_.data(), d_reasons_.data(),
                         d_scores_.data(), d_classes_.data(), k, v, stream_);
    choice_.upload_async(choices, first, stream_);
    window_begin_.upload_async(begins, first, stream_);
    const auto sl = layer_index(seq, layer);
    const std::int32_t lengths[1] = {n};
    length_.upload_async(lengths, sl, stream_);
    prompt_length_.upload_async(lengths, sl, stream_);
    const double zero[1] = {0.0};
    kept_sum_.upload_async(zero, sl, stream_);
    check(cudaStreamSynchronize(stream_), "prefill compaction");
    const auto t2 = std::chrono::steady_clock::now();
    prefill_seconds_ += std::chrono::duration<double>(t1 - t0).count();
    profile_seconds_ += std::chrono::duration<double>(t2 - t1).count();
    ls.length = n;
    ls.prompt_length = n;
  }

  /// One generation step of a batch of sequences at one layer. Device pointers: q, out
  /// [B, n_head_q, head_dim], k, v [B, n_head_kv, head_dim] float; host: seqs [B] (distinct,
  /// prefilled), cls [B]. Enqueues four kernels on the stream; no host sync.
  void decode(std::int32_t layer, std::span<const std::int32_t> seqs, const float* q,
              const float* k, const float* v, std::span<const token_class> cls, float* out) {
    raise_pending();
    const auto& g = store_.geometry();
    const auto nb = static_cast<std::int32_t>(seqs.size());
    expects(nb > 0 && nb <= max_batch, errc::invalid_argument, [&] {
      return fmt::format("decode batch of {} sequences outside [1, {}]", nb, max_batch);
    });
    expects(cls.size() == seqs.size(), errc::shape_mismatch,
            "decode: one token class per sequence of the batch");
    batch_heads batch;
    batch.n_seq_in_batch = nb;
    batch.n_layer = g.n_layer;
    batch.layer = layer;
    batch.n_head_kv = g.n_head_kv;
    step_tokens tokens;
    std::int32_t max_len = 0;
    for (std::int32_t b = 0; b < nb; ++b) {
      const std::int32_t s = seqs[static_cast<std::size_t>(b)];
      auto& ls = layer_state(s, layer);
      expects(ls.length > 0, errc::bad_state, [&] {
        return fmt::format("decode before prefill for sequence {} layer {}", s, layer);
      });
      expects(std::count(seqs.begin(), seqs.end(), s) == 1, errc::invalid_argument,
              [&] { return fmt::format("sequence {} appears twice in one decode batch", s); });
      expects(ls.length < capacity(), errc::out_of_range, [&] {
        return fmt::format("sequence {} layer {} reached the cache's max_context", s, layer);
      });
      batch.seq[b] = s;
      tokens.cls[b] = opt_.generated == generated_class_mode::frozen
                          ? token_class::none
                          : cls[static_cast<std::size_t>(b)];
      max_len = std::max(max_len, ls.length + 1);
    }
    const auto st = state();
    const auto view = store_.view();
    detail::step_append<T, Ladder><<<1, detail::step_threads, 0, stream_>>>(view, batch, ladder_,
                                                                            st, tokens, k, v);
    check_launch("step_append");
    decode_attention<T>(view, batch, q, out, group_, scale(), max_len, workspace_, stream_);
    detail::step_update<T, Ladder><<<static_cast<unsigned>(batch.pairs()),
                                     detail::update_threads, 0, stream_>>>(
        view, batch, ladder_, st, tokens, group_, workspace_.logits.data(),
        workspace_.token_stride, workspace_.final_ml.data());
    check_launch("step_update");
    for (std::int32_t b = 0; b < nb; ++b) {
      auto& ls = layer_state(seqs[static_cast<std::size_t>(b)], layer);
      ++ls.length;
      ++ls.decode_steps;
    }
  }

  /// The host cache's single-sequence signature (a batch of one).
  void decode(std::int32_t seq, std::int32_t layer, const float* q, const float* k,
              const float* v, token_class cls, float* out) {
    const std::int32_t seqs[1] = {seq};
    const token_class classes[1] = {cls};
    decode(layer, seqs, q, k, v, classes, out);
  }

  /// Frees every page of `seq`; it can be prefilled again.
  void release(std::int32_t seq) {
    raise_pending();
    const auto& g = store_.geometry();
    layer_state(seq, 0); // range check
    store_.clear(store_.index({seq, 0, 0}),
                 static_cast<std::size_t>(g.n_layer) * static_cast<std::size_t>(g.n_head_kv),
                 stream_);
    for (std::int32_t l = 0; l < g.n_layer; ++l) {
      layers_[layer_index(seq, l)] = layer_entry{};
    }
    const std::vector<std::int32_t> zeros(static_cast<std::size_t>(g.n_layer), 0);
    length_.upload_async(zeros, layer_index(seq, 0), stream_);
    check(cudaStreamSynchronize(stream_), "release");
  }

  /// Waits for the stream and raises a deferred device error (see the file comment).
  void synchronize() {
    check(cudaStreamSynchronize(stream_), "adaptive_cache<cuda>::synchronize");
    raise_pending();
  }

  [[nodiscard]] auto length(std::int32_t seq, std::int32_t layer) const -> std::int32_t {
    return layers_[layer_index(seq, layer)].length;
  }
  [[nodiscard]] auto choice(head_id h) const -> std::size_t {
    return heads_[store_.index(h)].choice;
  }
  [[nodiscard]] auto store() const noexcept -> const store_type& { return store_; }
  [[nodiscard]] auto options() const noexcept -> const cache_options& { return opt_; }

  /// Choices, memory and timings, as the host cache reports them (synchronises).
  [[nodiscard]] auto report() -> cache_report {
    synchronize();
    cache_report r;
    const auto& g = store_.geometry();
    for (std::size_t i = 0; i < Ladder::size; ++i) {
      r.policy_counts.emplace_back(Ladder::name(i), 0);
    }
    const auto sizes = store_.sizes();
    std::vector<double> kept_sum(layers_.size());
    kept_sum_.download(kept_sum);
    double fraction_sum = 0.0;
    std::int64_t steps = 0;
    const auto page_size = static_cast<std::size_t>(g.page_size);
    for (std::int32_t s = 0; s < g.n_seq; ++s) {
      for (std::int32_t l = 0; l < g.n_layer; ++l) {
        const auto li = layer_index(s, l);
        const auto& ls = layers_[li];
        if (ls.length == 0) {
          continue;
        }
        fraction_sum += kept_sum[li];
        steps += ls.decode_steps;
        const auto len = static_cast<std::size_t>(ls.length);
        for (std::int32_t h = 0; h < g.n_head_kv; ++h) {
          const head_id id{s, l, h};
          const auto i = store_.index(id);
          const auto& hs = heads_[i];
          r.heads.push_back({id, hs.choice, Ladder::name(hs.choice), sizes[i], ls.length,
                             hs.recovered[hs.choice], hs.recovered});
          ++r.policy_counts[hs.choice].second;
          r.bytes_full += (len + page_size - 1) / page_size * store_.page_bytes();
          r.kv_bytes_full += len * store_.kv_bytes_per_token();
          r.kv_bytes_kept += static_cast<std::size_t>(sizes[i]) * store_.kv_bytes_per_token();
        }
      }
    }
    r.bytes_resident = store_.bytes_resident();
    r.mean_kept_fraction = steps == 0 ? 1.0 : fraction_sum / static_cast<double>(steps);
    r.prefill_attention_seconds = prefill_seconds_;
    r.profile_seconds = profile_seconds_;
    return r;
  }

private:
  struct layer_entry {
    std::int32_t length = 0;
    std::int32_t prompt_length = 0;
    std::int64_t decode_steps = 0;
  };
  struct head_entry {
    std::uint8_t choice = 0;
    std::vector<double> recovered;
  };

  // Most tokens one head may hold (64-bit: max_context near 2^31 must not wrap).
  [[nodiscard]] auto capacity() const -> std::int64_t {
    return std::int64_t{store_.max_pages_per_head()} * store_.geometry().page_size;
  }

  [[nodiscard]] auto scale() const -> float { return logit_scale(opt_, store_.geometry()); }
  [[nodiscard]] auto layer_index(std::int32_t seq, std::int32_t layer) const -> std::size_t {
    return layer_slot(store_.geometry(), seq, layer);
  }
  auto layer_state(std::int32_t seq, std::int32_t layer) -> layer_entry& {
    return layers_[layer_index(seq, layer)];
  }

  [[nodiscard]] auto state() -> detail::cache_state {
    return {choice_.data(),       window_begin_.data(),
            length_.data(),       prompt_length_.data(),
            kept_sum_.data(),     pair_length_.data(),
            new_slot_.data(),     step_ok_.data(),
            status_.device(),     opt_.n_sinks,
            opt_.new_token == new_token_mode::drop_before_attention,
            opt_.group == group_reduce::worst};
  }

  // A step that failed on the device changed nothing there; the host mirror of the lengths is
  // re-read so the cache stays usable (release or retry after freeing memory).
  void raise_pending() {
    const int st = status_.host()[0];
    if (st == 0) {
      return;
    }
    check(cudaStreamSynchronize(stream_), "adaptive_cache<cuda>: deferred error");
    status_.host()[0] = 0;
    std::vector<std::int32_t> lengths(layers_.size());
    length_.download(lengths);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layers_[i].length = lengths[i];
    }
    expects((st & detail::status_oom) == 0, errc::out_of_memory,
            "a decode step found the device page pool exhausted; that step changed nothing "
            "and its output is invalid");
    raise(errc::out_of_range,
          "a decode step would have exceeded max_context; that step changed nothing and its "
          "output is invalid");
  }

  Ladder ladder_;
  Profiler profiler_;
  store_type store_;
  cache_options opt_;
  std::int32_t group_;
  cudaStream_t stream_;
  std::vector<layer_entry> layers_;
  std::vector<head_entry> heads_;
  device_buffer<std::uint8_t> choice_;
  device_buffer<std::int32_t> window_begin_;
  device_buffer<std::int32_t> length_;
  device_buffer<std::int32_t> prompt_length_;
  device_buffer<double> kept_sum_;
  device_buffer<std::int32_t> pair_length_;
  device_buffer<std::int32_t> new_slot_;
  device_buffer<int> step_ok_;
  mapped_buffer<int> status_;
  decode_workspace workspace_;
  // Prefill scratch.
  device_buffer<float> stats_;
  std::vector<float> host_stats_;
  std::vector<head_stats> group_stats_;
  head_planner planner_;
  std::vector<std::int32_t> offsets_;
  std::vector<std::int32_t> rows_;
  std::vector<keep_reason> reasons_;
  std::vector<float> scores_;
  device_buffer<std::int32_t> d_offsets_;
  device_buffer<std::int32_t> d_rows_;
  device_buffer<keep_reason> d_reasons_;
  device_buffer<float> d_scores_;
  device_buffer<token_class> d_classes_;
  double prefill_seconds_ = 0.0;
  double profile_seconds_ = 0.0;
};

} // namespace kvsieve::cuda
