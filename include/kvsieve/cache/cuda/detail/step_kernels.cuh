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
#include <kvsieve/core/cuda/last_block.cuh>
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

inline constexpr int step_threads = 256;   ///< step_plan: one block for the whole batch
inline constexpr int write_warps = 8;      ///< step_write: one warp per pair
inline constexpr int update_threads = 256; ///< step_update: one thread per token of a chunk
inline constexpr int update_chunk = update_threads;
inline constexpr int max_evictions = 1024; ///< listed per pair and step; more take a slow path

/// Per-pair scratch of step_update, allocated once with the cache (decode never allocates):
/// a chunk writes its partial results to its own entries, so nothing needs zeroing between
/// steps except the two counters, which step_plan resets.
struct step_scratch {
  std::int32_t* done;          ///< [pairs] chunks of the pair finished (the last runs the tail)
  std::int32_t* n_evicted;     ///< [pairs]
  std::int32_t* evicted;       ///< [pairs][max_evictions] slots, in no order
  unsigned long long* weakest; ///< [pairs][max_chunks] a chunk's weakest budget member, packed
  std::int32_t* weakest_slot;  ///< [pairs][max_chunks] ... and its slot
  std::int32_t* n_budget;      ///< [pairs][max_chunks] budget members in the chunk
  std::int32_t max_chunks;
};

/// Device-side state of the cache, by value into the step kernels.
struct cache_state {
  std::uint8_t* choice;        ///< [heads] ladder index
  std::int32_t* fixed_budget;  ///< [heads] the profiler's budget for the head; -1: the policy's
  std::int32_t* window_begin;  ///< [heads] first position of the recent window
  std::int32_t* length;        ///< [n_seq * n_layer] tokens seen
  std::int32_t* prompt_length; ///< [n_seq * n_layer]
  double* kept_fraction_sum;   ///< [n_seq * n_layer] sum over steps of kept / (t * n_head_kv)
  std::int32_t* pair_length;   ///< [pairs] this step's t, written by step_plan
  std::int32_t* new_slot;      ///< [pairs] this step's new token slot, -1 if dropped
  int* step_ok;                ///< this step's pages were granted
  int* status;                 ///< mapped host memory: status bits, sticky until clear_error()
  step_scratch scratch;
  std::int32_t n_sinks;
  new_token_mode new_token;    ///< fastgen-spec §6.6
  bool reduce_max;             ///< group_reduce::worst
};

/// The scratch's buffers, sized for `pairs` pairs of heads of at most `tokens` tokens.
class step_workspace {
public:
  step_workspace(std::int32_t pairs, std::int32_t tokens)
      : max_chunks_(static_cast<std::int32_t>(div_up(std::max(tokens, 1), update_chunk))),
        done_(static_cast<std::size_t>(pairs)), n_evicted_(done_.size()),
        evicted_(done_.size() * max_evictions),
        weakest_(done_.size() * static_cast<std::size_t>(max_chunks_)),
        weakest_slot_(weakest_.size()), n_budget_(weakest_.size()) {}
  [[nodiscard]] auto view() const -> step_scratch {
    return {done_.data(),          n_evicted_.data(), evicted_.data(), weakest_.data(),
            weakest_slot_.data(), n_budget_.data(),  max_chunks_};
  }

private:
  std::int32_t max_chunks_;
  device_buffer<std::int32_t> done_;
  device_buffer<std::int32_t> n_evicted_;
  device_buffer<std::int32_t> evicted_;
  device_buffer<unsigned long long> weakest_;
  device_buffer<std::int32_t> weakest_slot_;
  device_buffer<std::int32_t> n_budget_;
};

// Step 1a: one block decides every pair's new token (appended, or dropped: §6.6) and hands out
// its pages, all pairs or none: a handful of integer operations per pair, no K or V.
template <class T, class Ladder>
__global__ void __launch_bounds__(step_threads)
    step_plan_kernel(store_view<T> s, batch_heads batch, Ladder ladder, cache_state st,
                     step_tokens tokens) {
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
    st.scratch.done[p] = 0;
    st.scratch.n_evicted[p] = 0;
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
}

// Step 1b: a warp per pair writes the new token's K and V rows and metadata. A row pair is
// 2 * head_dim elements: the warp's lanes cover K and V together, so no lane idles for
// head_dim 128 in bf16 (32 16-byte vectors, one per lane).
template <class T>
__global__ void __launch_bounds__(write_warps * 32)
    step_write_kernel(store_view<T> s, batch_heads batch, cache_state st, step_tokens tokens,
                      const float* __restrict__ k, const float* __restrict__ v) {
  if (*st.step_ok == 0) {
    return;
  }
  constexpr int ve = vec_elems<T>;
  const std::int32_t lane = static_cast<std::int32_t>(threadIdx.x % 32U);
  const std::int32_t p = static_cast<std::int32_t>(blockIdx.x) * write_warps +
                         static_cast<std::int32_t>(threadIdx.x / 32U);
  if (p >= batch.pairs()) {
    return;
  }
  const std::int32_t n = st.new_slot[p];
  if (n < 0) {
    return;
  }
  const std::int32_t head = batch.head(p);
  std::byte* pg = s.page(head, n / s.page_size);
  const std::int32_t off = n % s.page_size;
  const std::int32_t d = s.head_dim;
  const std::size_t row = static_cast<std::size_t>(p) * d;
  for (std::int32_t c = lane * ve; c < 2 * d; c += 32 * ve) {
    if (c < d) {
      store_vec<T>(s.key_in(pg, off) + c, k + row + c);
    } else {
      store_vec<T>(s.value_in(pg, off) + (c - d), v + row + (c - d));
    }
  }
  if (lane == 0) {
    *s.position_in(pg, off) = st.pair_length[p] - 1;
    *s.score_in(pg, off) = 0.0F;
    *s.cls_in(pg, off) = tokens.cls[p / batch.n_head_kv];
    *s.reason_in(pg, off) = keep_reason::evicted; // decided by step_update
    s.sizes[head] = n + 1;
  }
}

/// A budget member's rank as one unsigned integer, smaller = weaker: the key's order-preserving
/// bits, then the position (older leaves first, select.hpp's outranks). Exact only when the key
/// is a float (every score_rule mode but mean, whose key is a double quotient).
__device__ __forceinline__ auto pack_weakness(float key, std::int32_t position)
    -> unsigned long long {
  const unsigned bits = __float_as_uint(key + 0.0F); // -0 -> +0: the host compares 0 == -0
  const unsigned ordered = (bits & 0x80000000U) != 0U ? ~bits : bits | 0x80000000U;
  return (static_cast<unsigned long long>(ordered) << 32U) | static_cast<unsigned>(position);
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

// Step 3 (after decode_attention): FastGen Algorithm 2 exactly as detail::finish_step
// (cache/step_algorithm.hpp) does on the host (see there for the rules). A grid of (pair,
// chunk of 256 tokens): each thread scores, demotes and classifies one token, each chunk reports
// its budget members and its weakest one, and the last chunk of a pair to finish (threadfence
// reduction) evicts the budget's excess, compacts the head and frees its pages.
template <class T, class Ladder>
__global__ void __launch_bounds__(update_threads)
    step_update_kernel(store_view<T> s, batch_heads batch, Ladder ladder, cache_state st,
                       step_tokens tokens, std::int32_t group, const float* __restrict__ logits,
                       std::int32_t token_stride, const float2* __restrict__ final_ml) {
  __shared__ std::int32_t page_ids[update_chunk];
  __shared__ int chunk_budget;
  __shared__ unsigned long long warp_weakest[update_threads / 32];
  __shared__ std::int32_t warp_slot[update_threads / 32];
  __shared__ std::int32_t evicted[max_evictions];
  __shared__ std::int32_t moves_from[max_evictions];
  __shared__ int n_evicted;
  __shared__ int n_moves;
  __shared__ int excess;
  __shared__ weakest best[update_threads / 32];
  if (*st.step_ok == 0) {
    return;
  }
  const int tid = static_cast<int>(threadIdx.x);
  const std::int32_t p = static_cast<std::int32_t>(blockIdx.x);
  const std::int32_t chunk = static_cast<std::int32_t>(blockIdx.y);
  const std::int32_t head = batch.head(p);
  const std::int32_t b = p / batch.n_head_kv;
  const std::int32_t t = st.pair_length[p];
  const std::int32_t pos = t - 1;
  const std::int32_t sl = batch.seq[b] * batch.n_layer + batch.layer;
  const step_context ctx{t, st.prompt_length[sl]};
  const device_rule r = evaluate(ladder, st.choice[head], token_info{pos, tokens.cls[b]}, ctx,
                                 st.n_sinks, st.fixed_budget[head]);
  const std::int32_t new_slot = st.new_slot[p];
  const std::int32_t n = s.sizes[head];
  // The size contract the logits were written under (decode_attention: one column per resident
  // token; the launch: enough chunks). Checked, not trusted: a head outside it is left as
  // step_write left it, with a status bit the host raises (uniform over the pair's blocks).
  if (n > token_stride || n > t || n > static_cast<std::int32_t>(gridDim.y) * update_chunk) {
    if (chunk == 0 && tid == 0) {
      atomicOr(st.status, status_contract);
    }
    return;
  }
  const std::int32_t wb = st.window_begin[head];
  const std::int32_t new_begin = kvsieve::detail::window_begin_after(wb, t, r);
  const std::int32_t begin = chunk * update_chunk;
  const std::int32_t i = begin + tid;
  const auto entry = static_cast<std::size_t>(p) * st.scratch.max_chunks + chunk;

  if (begin < n) {
    // The chunk's page ids, staged once: no thread reads the page table per field.
    const std::int32_t first_page = begin / s.page_size;
    const std::int32_t n_pages = s.pages_for(min(n, begin + update_chunk)) - first_page;
    for (std::int32_t q = tid; q < n_pages; q += update_threads) {
      page_ids[q] = s.table[static_cast<std::size_t>(head) * s.table_stride + first_page + q];
    }
    if (tid == 0) {
      chunk_budget = 0;
    }
    __syncthreads();
    unsigned long long mine = ~0ULL;
    std::int32_t mine_slot = -1;
    if (i < n) {
      std::byte* pg = s.page_by_id(page_ids[i / s.page_size - first_page]);
      const std::int32_t off = i % s.page_size;
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
      const float score = r.rank.update(*s.score_in(pg, off), prob);
      *s.score_in(pg, off) = score;
      const keep_reason old = *s.reason_in(pg, off);
      const std::int32_t at = *s.position_in(pg, off);
      keep_reason now = old;
      if (i == new_slot) {
        now = kvsieve::detail::new_token_reason(r, pos, new_begin);
      } else if (at >= wb && at < min(new_begin, pos) && old != keep_reason::rule) {
        now = kvsieve::detail::demoted_reason(r); // leaves the window
      }
      if (now != old) {
        *s.reason_in(pg, off) = now;
      }
      if (now == keep_reason::budget) {
        atomicAdd(&chunk_budget, 1);
        mine = pack_weakness(static_cast<float>(r.rank.key(score, at, t)), at);
        mine_slot = i;
      } else if (now == keep_reason::evicted) {
        const int e = atomicAdd(&st.scratch.n_evicted[p], 1);
        if (e < max_evictions) {
          st.scratch.evicted[static_cast<std::size_t>(p) * max_evictions + e] = i;
        }
      }
    }
    // The chunk's weakest budget member: a warp minimum, then one per block.
    for (int o = 16; o > 0; o /= 2) {
      const unsigned long long other = __shfl_xor_sync(0xffffffffU, mine, o);
      const std::int32_t other_slot = __shfl_xor_sync(0xffffffffU, mine_slot, o);
      if (other < mine) {
        mine = other;
        mine_slot = other_slot;
      }
    }
    if (tid % 32 == 0) {
      warp_weakest[tid / 32] = mine;
      warp_slot[tid / 32] = mine_slot;
    }
    __syncthreads();
    if (tid == 0) {
      for (int w = 1; w < update_threads / 32; ++w) {
        if (warp_weakest[w] < mine) {
          mine = warp_weakest[w];
          mine_slot = warp_slot[w];
        }
      }
      st.scratch.weakest[entry] = mine;
      st.scratch.weakest_slot[entry] = mine_slot;
      st.scratch.n_budget[entry] = chunk_budget;
    }
  } else if (tid == 0) {
    st.scratch.n_budget[entry] = 0;
    st.scratch.weakest[entry] = ~0ULL;
    st.scratch.weakest_slot[entry] = -1;
  }

  // The last block of the pair to get here finishes it.
  if (!last_to_arrive(&st.scratch.done[p], static_cast<int>(gridDim.y))) {
    return;
  }
  // The tail, on the pair's last block. Other blocks wrote these in this launch: read them past
  // this SM's L1 (__ldcg), which is not coherent with theirs.
  const int chunks = static_cast<int>(div_up(n, update_chunk));
  const auto row = static_cast<std::size_t>(p) * st.scratch.max_chunks;
  if (tid == 0) {
    int members = 0;
    unsigned long long w = ~0ULL;
    std::int32_t w_slot = -1;
    for (int c = 0; c < chunks; ++c) {
      members += __ldcg(st.scratch.n_budget + row + c);
      const unsigned long long u = __ldcg(st.scratch.weakest + row + c);
      if (u < w) {
        w = u;
        w_slot = __ldcg(st.scratch.weakest_slot + row + c);
      }
    }
    n_evicted = __ldcg(st.scratch.n_evicted + p);
    excess = members - r.budget;
    // One member too many (the usual step: the new token or one leaving the window joined the
    // budget): the chunks have found it. The mean ranking's key is a double, so its packed form
    // is not exact; it takes the scan below, as does an excess of several.
    if (excess == 1 && r.rank.mode != score_mode::mean) {
      *s.reason(head, w_slot) = keep_reason::evicted;
      if (n_evicted < max_evictions) {
        st.scratch.evicted[static_cast<std::size_t>(p) * max_evictions + n_evicted] = w_slot;
      }
      ++n_evicted;
      excess = 0;
    }
  }
  __syncthreads();
  const std::int32_t* listed = st.scratch.evicted + static_cast<std::size_t>(p) * max_evictions;
  for (int e = tid; e < min(n_evicted, max_evictions); e += update_threads) {
    evicted[e] = __ldcg(listed + e);
  }
  __syncthreads();

  // Budget overflow by several: the weakest member leaves (lowest key, older on a tie), one at a
  // time; the keys are fixed for the step, so this equals the host's sequence of evictions.
  const int over = excess;
  for (int e = 0; e < over; ++e) {
    weakest mine{0.0, 0, -1};
    for (std::int32_t j = tid; j < n; j += update_threads) {
      if (load_cg(s.reason(head, j)) != keep_reason::budget) {
        continue;
      }
      const std::int32_t at = __ldcg(s.position(head, j));
      const weakest c{r.rank.key(__ldcg(s.score(head, j)), at, t), at, j};
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
      for (int q = 1; q < update_threads / 32; ++q) {
        w = weaker(best[q], w) ? best[q] : w;
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
        while (lo < hi && load_cg(s.reason(head, lo)) != keep_reason::evicted) {
          ++lo;
        }
        while (hi > lo && load_cg(s.reason(head, hi)) == keep_reason::evicted) {
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
    for (int q = 1; q < ne; ++q) { // insertion sort: ne is tiny
      const std::int32_t x = evicted[q];
      int j = q - 1;
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
  // Each warp moves one survivor into a hole (the moves touch distinct slots).
  const int moves = n_moves;
  for (int m = tid / 32; m < moves; m += update_threads / 32) {
    s.move_token(head, moves_from[m], evicted[m], tid % 32, 32);
  }
  __syncthreads();
  const std::int32_t pages_before = s.pages_for(n);
  const std::int32_t pages_after = s.pages_for(kept);
  if (tid == 0) {
    const std::int32_t freed = pages_before - pages_after;
    if (freed > 0) {
      const std::int32_t base = atomicAdd(s.free_top, freed);
      for (std::int32_t q = 0; q < freed; ++q) {
        s.free_list[base + q] =
            s.table[static_cast<std::size_t>(head) * s.table_stride + pages_after + q];
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


/// Step 1 of a decode step: one block decides and allocates for every pair (all pages or none),
/// then a warp per pair writes the new rows.
template <class T, class Ladder>
void step_append(const store_view<T>& s, const batch_heads& batch, const Ladder& ladder,
                 const cache_state& st, const step_tokens& tokens, const float* k,
                 const float* v, cudaStream_t stream) {
  step_plan_kernel<T, Ladder><<<1, step_threads, 0, stream>>>(s, batch, ladder, st, tokens);
  check_launch("step_plan");
  const auto blocks = static_cast<unsigned>(div_up(batch.pairs(), write_warps));
  step_write_kernel<T><<<blocks, write_warps * 32, 0, stream>>>(s, batch, st, tokens, k, v);
  check_launch("step_write");
}

/// Step 3 (after decode_attention): a grid of (pair, 256-token chunk) scores, demotes and
/// evicts; each pair's last block compacts it. max_tokens bounds every head's resident tokens
/// (as for decode_attention; checked on the device).
template <class T, class Ladder>
void step_update(const store_view<T>& s, const batch_heads& batch, const Ladder& ladder,
                 const cache_state& st, const step_tokens& tokens, std::int32_t group,
                 const float* logits, std::int32_t token_stride, const float2* final_ml,
                 std::int32_t max_tokens, cudaStream_t stream) {
  const auto chunks = static_cast<unsigned>(std::min<std::int64_t>(
      div_up(std::max(max_tokens, 1), update_chunk), st.scratch.max_chunks));
  const dim3 grid(static_cast<unsigned>(batch.pairs()), chunks);
  step_update_kernel<T, Ladder><<<grid, update_threads, 0, stream>>>(
      s, batch, ladder, st, tokens, group, logits, token_stride, final_ml);
  check_launch("step_update");
}

} // namespace detail

} // namespace kvsieve::cuda
