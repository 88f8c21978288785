// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The device cache's step kernels and their launchers (cache/cuda/adaptive_cache.cuh drives
/// them): step_append puts every pair's new token into its head, step_update runs FastGen
/// Algorithm 2 after decode attention. The per-step decisions are cache/step_rule.hpp's, the
/// host cache's own code.

#include <cstdint>
#include <type_traits>
#include <utility>

#include <cuda_runtime.h>

#include <kvsieve/attention/cuda/decode.cuh>
#include <kvsieve/cache/options.hpp>
#include <kvsieve/cache/step_rule.hpp>
#include <kvsieve/core/cuda/numeric.cuh>
#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/store/cuda/paged_store.cuh>

namespace kvsieve::cuda {

/// Per-step values of a batch that only the host knows (the new tokens' classes), by value.
struct step_tokens {
  token_class cls[max_batch] = {};
};

namespace detail {

template <class Ladder, class F, std::size_t... I>
__device__ void visit_candidate(const Ladder& l, std::size_t i, F&& f,
                                std::index_sequence<I...> /*indices*/) {
  ((i == I ? (f(l.template get<I>()), 0) : 0), ...);
}

/// A head's policy at one step (cache/step_rule.hpp, the host's code) and its budget's ranking,
/// evaluated on the device from the ladder itself.
struct device_rule : step_rule {
  score_rule rank{};
};

template <class Ladder>
__device__ auto evaluate(const Ladder& ladder, std::size_t choice, token_info tok,
                         step_context ctx, std::int32_t n_sinks, std::int32_t fixed_budget)
    -> device_rule {
  device_rule r;
  visit_candidate(
      ladder, choice,
      [&](const auto& pol) {
        static_cast<step_rule&>(r) =
            kvsieve::detail::rule_of_step(pol, tok, ctx, n_sinks, fixed_budget);
        static_assert(std::is_same_v<decltype(ranking_of(pol)), score_rule>,
                      "kvsieve: the device cache's budgets rank by a kvsieve::score_rule; custom "
                      "score_ranking types run on the host cache");
        r.rank = ranking_of(pol);
      },
      std::make_index_sequence<Ladder::size>{});
  return r;
}

/// Device-side state of the cache, by value into the step kernels.
struct cache_state {
  std::uint8_t* choice;        ///< [heads] ladder index
  std::int32_t* fixed_budget;  ///< [heads] the profiler's budget for the head; -1: the policy's
  std::int32_t* window_begin;  ///< [heads] first position of the recent window
  std::int32_t* length;        ///< [n_seq * n_layer] tokens seen
  std::int32_t* prompt_length; ///< [n_seq * n_layer]
  double* kept_fraction_sum;   ///< [n_seq * n_layer] sum over steps of kept / (t * n_head_kv)
  std::int32_t* pair_length;   ///< [pairs] this step's t, written by step_append
  std::int32_t* new_slot;      ///< [pairs] this step's new token slot, -1 if dropped
  int* step_ok;                ///< this step's pages were granted
  int* status;                 ///< mapped host memory: status bits, sticky until clear_error()
  std::int32_t n_sinks;
  new_token_mode new_token;    ///< fastgen-spec §6.6
  bool reduce_max;             ///< group_reduce::worst
};

inline constexpr int step_threads = 256;
inline constexpr int update_threads = 128;
inline constexpr int max_evictions = 1024; ///< listed per head and step; more take a slow path

// Step 1: the new token of every pair is appended (or dropped, §6.6), all pages or none.
template <class T, class Ladder>
__global__ void __launch_bounds__(step_threads)
    step_append_kernel(store_view<T> s, batch_heads batch, Ladder ladder, cache_state st,
                step_tokens tokens, const float* __restrict__ k, const float* __restrict__ v) {
  __shared__ int need;
  __shared__ int overflow;
  __shared__ int taken;
  __shared__ int failed;
  const int tid = static_cast<int>(threadIdx.x);
  if (tid == 0) {
    need = 0;
    overflow = 0;
    taken = 0;
    // A device error is sticky: after a failed step, every later step changes nothing until the
    // host has seen the error and cleared it (adaptive_cache::clear_error).
    failed = *static_cast<volatile int*>(st.status) != 0 ? 1 : 0;
    if (failed != 0) {
      *st.step_ok = 0;
    }
  }
  __syncthreads();
  if (failed != 0) {
    return;
  }
  const std::int32_t pairs = batch.pairs();
  for (std::int32_t p = tid; p < pairs; p += step_threads) {
    const std::int32_t head = batch.head(p);
    const std::int32_t b = p / batch.n_head_kv;
    const std::int32_t sl = batch.seq[b] * batch.n_layer + batch.layer;
    const std::int32_t t = st.length[sl] + 1;
    const step_context ctx{t, st.prompt_length[sl]};
    const device_rule r = evaluate(ladder, st.choice[head], token_info{t - 1, tokens.cls[b]},
                                   ctx, st.n_sinks, st.fixed_budget[head]);
    const std::int32_t n = s.sizes[head];
    const bool drop = kvsieve::detail::drops_new_token(r, st.new_token, n);
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
    step_update_kernel(store_view<T> s, batch_heads batch, Ladder ladder, cache_state st,
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
  const device_rule r = evaluate(ladder, st.choice[head], token_info{pos, tokens.cls[b]}, ctx,
                                 st.n_sinks, st.fixed_budget[head]);
  const std::int32_t new_slot = st.new_slot[p];
  const std::int32_t n = s.sizes[head];
  // The size contract the logits were written under (decode_attention: one column per resident
  // token). Checked, not trusted: a head larger than the workspace is left as step_append left it,
  // with a status bit the host raises (the same value in every thread: a uniform early return).
  if (n > token_stride || n > t) {
    if (tid == 0) {
      atomicOr(st.status, status_contract);
    }
    return;
  }
  const std::int32_t wb = st.window_begin[head];
  const std::int32_t new_begin = kvsieve::detail::window_begin_after(wb, t, r);
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
      // expf, not __expf: these probabilities accumulate into the scores that rank budget
      // members over thousands of steps, and __expf's error grows with |x| (CUDA Math API:
      // 2 + floor(|1.173 x|) ulp) where expf stays within 2 ulp, the host's std::exp within 1.
      // One exp per resident token and query head is cheap next to decode's K and V reads.
      const float x =
          expf(logits[(static_cast<std::size_t>(p) * group + g) * token_stride + i] - ml.x) /
          ml.y;
      prob = st.reduce_max ? fmaxf(prob, x) : prob + x;
    }
    if (!st.reduce_max) {
      prob /= static_cast<float>(group);
    }
    *s.score(head, i) = r.rank.update(*s.score(head, i), prob);
    const keep_reason old = *s.reason(head, i);
    keep_reason now = old;
    if (i == new_slot) {
      now = kvsieve::detail::new_token_reason(r, pos, new_begin);
    } else {
      const std::int32_t at = *s.position(head, i);
      if (at >= wb && at < leave_end && old != keep_reason::rule) { // leaves the window
        now = kvsieve::detail::demoted_reason(r);
      }
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



/// Step 1 of a decode step: one block appends every pair's new token (all pages or none).
template <class T, class Ladder>
void step_append(const store_view<T>& s, const batch_heads& batch, const Ladder& ladder,
                 const cache_state& st, const step_tokens& tokens, const float* k,
                 const float* v, cudaStream_t stream) {
  step_append_kernel<T, Ladder><<<1, step_threads, 0, stream>>>(s, batch, ladder, st, tokens, k,
                                                                 v);
  check_launch("step_append");
}

/// Step 3 (after decode_attention): one block per pair scores, demotes, evicts and compacts.
template <class T, class Ladder>
void step_update(const store_view<T>& s, const batch_heads& batch, const Ladder& ladder,
                 const cache_state& st, const step_tokens& tokens, std::int32_t group,
                 const float* logits, std::int32_t token_stride, const float2* final_ml,
                 cudaStream_t stream) {
  step_update_kernel<T, Ladder><<<static_cast<unsigned>(batch.pairs()), update_threads, 0,
                                  stream>>>(s, batch, ladder, st, tokens, group, logits,
                                            token_stride, final_ml);
  check_launch("step_update");
}

} // namespace detail

} // namespace kvsieve::cuda
