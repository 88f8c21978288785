// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The __global__ kernels of decode attention (not API; the launchers and the contract are in
/// attention/cuda/decode.cuh):
///  - decode_plan_kernel: one block reads every pair's length and splits the layer into work
///    items of whole tiles (decode_chunk tokens), as few tiles per item as keeps the item count
///    within one wave of the partial kernel (balanced split-KV for ragged lengths); empty pairs
///    get zeros here.
///  - decode_partial_kernel: a block takes work items (one chunk of one (sequence, KV head)
///    pair, for up to MAXG of its query heads) until the plan is done. One pass over K and V
///    with an online softmax (running max and sum, rescaled as rows arrive), U rows of K and V
///    loaded per thread before any of them is used, each tile's page ids and per-row offsets
///    staged in shared memory once. A pair of one chunk is finished by its block; for a split
///    pair, the block that finishes its last chunk merges the chunks (log-sum-exp rule) in the
///    same launch.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <cuda_runtime.h>

#include <kvsieve/core/cuda/last_block.cuh>
#include <kvsieve/core/cuda/numeric.cuh>
#include <kvsieve/store/cuda/paged_store.cuh>

namespace kvsieve::cuda {

/// Tokens per split-KV chunk.
inline constexpr std::int32_t decode_chunk = 256;
/// Most sequences in one batched launch (their ids travel as kernel parameters).
inline constexpr std::int32_t max_batch = 256;

/// Which heads a launch covers: pair p is KV head p % n_head_kv of sequence seq[p / n_head_kv]
/// at `layer`. Passed by value: no upload per step.
struct batch_heads {
  std::int32_t n_seq_in_batch = 0;
  std::int32_t n_layer = 1;
  std::int32_t layer = 0;
  std::int32_t n_head_kv = 1;
  std::int32_t seq[max_batch] = {};

  [[nodiscard]] __host__ __device__ auto pairs() const -> std::int32_t {
    return n_seq_in_batch * n_head_kv;
  }
  [[nodiscard]] __host__ __device__ auto head(std::int32_t pair) const -> std::int32_t {
    return (seq[pair / n_head_kv] * n_layer + layer) * n_head_kv + pair % n_head_kv;
  }
};

namespace detail {

inline constexpr int decode_threads = 128;

/// How a block of decode_threads covers rows of D elements of T with 16-byte vectors.
template <class T, int D>
struct row_shape {
  static constexpr int ve = vec_elems<T>;           // elements per 16-byte vector
  static constexpr int vpr = D / ve;                // vectors per row
  static constexpr int tpr = vpr < 32 ? vpr : 32;   // threads per row (a row group)
  static constexpr int nv = vpr / tpr;              // vectors per thread and row
  static constexpr int rows = decode_threads / tpr; // row groups per block
  static constexpr int unroll = nv >= 4 ? 1 : 4 / nv; // rows per row group and step
  static constexpr int step_rows = rows * unroll;   // rows per block and step
  // K and V loads in flight per thread in one step: 2 * unroll * nv (8 for every D and T).
  static_assert(D % ve == 0 && vpr % tpr == 0 && decode_threads % tpr == 0);
  static_assert(decode_chunk % step_rows == 0, "a step never straddles two chunks");
};

/// Arguments of decode_plan_kernel and decode_partial_kernel, by value (trivially copyable).
struct decode_kernel_args {
  const float* q;         // [pairs, group, D]
  float* out;             // [pairs, group, D]
  float* partial_o;       // [pairs, splits, group, D]
  float2* partial_ml;     // [pairs, splits, group]: chunk max and sum
  float* logits;          // [pairs, group, token_stride]
  float2* final_ml;       // [pairs, group]
  int2* work;             // [pairs * splits]: the plan's items, (pair, chunk), pair-major
  std::int32_t* plan;     // items, tiles per chunk, then [pairs]: chunks of each pair
  std::int32_t* done;     // [pairs * z-blocks]: chunks finished (the last one merges; reset)
  std::int32_t group;     // query heads per KV head
  float scale;            // logit scale
  std::int32_t splits;    // workspace chunk stride (ws.splits)
  std::int32_t token_stride;
  std::int32_t chunks;    // this call's tiles per pair at most (ceil(max_tokens / decode_chunk))
  std::int32_t page_shift; // log2(page_size) when it is a power of two, else -1
  std::int32_t target;    // work items the plan aims at (blocks of one wave along x)
};

/// Where the plan kernel leaves its results in decode_kernel_args::plan.
inline constexpr int plan_items = 0;      // work items
inline constexpr int plan_per_chunk = 1;  // tiles per chunk
inline constexpr int plan_pairs = 2;      // then chunks per pair
static_assert(std::is_trivially_copyable_v<decode_kernel_args>);
static_assert(std::is_trivially_copyable_v<batch_heads>);

/// Dynamic shared memory of decode_partial_kernel, in this order (8-byte items first):
///   row_off [decode_chunk] u64  byte offset of each row's key in the pool
///   pages   [decode_chunk + 2] i32  the chunk's page ids
///   q       [MAXG][D] float
///   red     [rows][MAXG][D] float  row-group accumulators for the block merge
///   ml      [rows][MAXG] float2  row-group (max, sum)
template <class T, int D, int MAXG>
constexpr auto decode_smem_bytes() -> std::size_t {
  using shape = row_shape<T, D>;
  return sizeof(unsigned long long) * decode_chunk + sizeof(std::int32_t) * (decode_chunk + 2) +
         sizeof(float) * (static_cast<std::size_t>(MAXG) * D +
                          static_cast<std::size_t>(shape::rows) * MAXG * D +
                          2 * static_cast<std::size_t>(shape::rows) * MAXG);
}

template <int TPR>
__device__ __forceinline__ auto group_sum(float x) -> float {
#pragma unroll
  for (int off = TPR / 2; off > 0; off /= 2) {
    x += __shfl_xor_sync(0xffffffffU, x, off);
  }
  return x;
}

/// The effective token count of a pair: the store's size, clamped to the call's chunks so that
/// a size above the caller's max_tokens can never index past the workspace (out of contract:
/// the tokens beyond are ignored).
__device__ __forceinline__ auto clamped_size(std::int32_t n, std::int32_t chunks)
    -> std::int32_t {
  return min(n, chunks * decode_chunk);
}

inline constexpr int plan_threads = 256;

/// The plan's tiles per chunk: the fewest that keep the items, sum over pairs of
/// ceil(tiles / c), within `target`, or every pair in one item when even that is more (more
/// pairs than the target). Items(c) does not grow with c, so a binary search finds it; `count`
/// is items(c) as the block sums it (uniform across the block).
template <class Count>
__device__ auto plan_tiles_per_chunk(std::int32_t total, std::int32_t longest,
                                     std::int32_t target, Count count) -> std::int32_t {
  if (total <= target) {
    return 1; // a chunk per tile already fits: the most parallel plan
  }
  std::int32_t lo = min((total + target - 1) / target, longest); // items(c) >= total / c
  std::int32_t hi = longest;                                   // items(longest) = live pairs
  while (lo < hi) {
    const std::int32_t mid = lo + (hi - lo) / 2;
    if (count(mid) <= target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// The work plan of one call, on one block: tiles per pair, tiles per chunk, the items
// (pair-major, so a pair's chunks are neighbours in the queue), chunks per pair; the outputs of
// empty pairs (zeros, (-inf, 0)), which no item covers. A deterministic scan, not atomics, so a
// replayed graph runs the same items on the same blocks' schedule.
__global__ void __launch_bounds__(plan_threads)
    decode_plan_kernel(const std::int32_t* __restrict__ sizes, batch_heads batch,
                       decode_kernel_args a, std::int32_t head_dim) {
  __shared__ int total;
  __shared__ int longest;
  __shared__ int counted;
  __shared__ int scan[plan_threads];
  const int tid = static_cast<int>(threadIdx.x);
  const std::int32_t pairs = batch.pairs();
  std::int32_t* per_pair = a.plan + plan_pairs; // tiles, then chunks, of each pair
  if (tid == 0) {
    total = 0;
    longest = 0;
  }
  __syncthreads();
  int my_total = 0;
  int my_longest = 0;
  for (std::int32_t p = tid; p < pairs; p += plan_threads) {
    const std::int32_t n = clamped_size(sizes[batch.head(p)], a.chunks);
    const std::int32_t tiles = (n + decode_chunk - 1) / decode_chunk;
    per_pair[p] = tiles;
    my_total += tiles;
    my_longest = max(my_longest, tiles);
  }
  atomicAdd(&total, my_total);
  atomicMax(&longest, my_longest);
  __syncthreads();
  // Empty pairs: a warp each, only for them (the check is one load per pair).
  const int warp = tid / 32;
  const int lane = tid % 32;
  const std::int32_t row = a.group * head_dim;
  for (std::int32_t p = warp; p < pairs; p += plan_threads / 32) {
    if (per_pair[p] != 0) {
      continue;
    }
    for (std::int32_t i = lane; i < row; i += 32) {
      a.out[static_cast<std::size_t>(p) * row + i] = 0.0F;
    }
    for (std::int32_t g = lane; g < a.group; g += 32) {
      a.final_ml[static_cast<std::size_t>(p) * a.group + g] = make_float2(-INFINITY, 0.0F);
    }
  }
  const std::int32_t c =
      plan_tiles_per_chunk(total, longest, a.target, [&](std::int32_t cand) -> std::int32_t {
        if (tid == 0) {
          counted = 0;
        }
        __syncthreads();
        int mine = 0;
        for (std::int32_t p = tid; p < pairs; p += plan_threads) {
          mine += (per_pair[p] + cand - 1) / cand;
        }
        atomicAdd(&counted, mine);
        __syncthreads();
        const int items = counted;
        __syncthreads(); // every thread has read it before the next reset
        return items;
      });
  // Items in pair order: a contiguous run of pairs per thread, an inclusive scan of the runs.
  const std::int32_t run = (pairs + plan_threads - 1) / plan_threads;
  const std::int32_t b0 = min(tid * run, pairs);
  const std::int32_t b1 = min(b0 + run, pairs);
  int mine = 0;
  for (std::int32_t p = b0; p < b1; ++p) {
    mine += (per_pair[p] + c - 1) / c;
  }
  scan[tid] = mine;
  __syncthreads();
  for (int off = 1; off < plan_threads; off *= 2) {
    const int add = tid >= off ? scan[tid - off] : 0;
    __syncthreads();
    scan[tid] += add;
    __syncthreads();
  }
  int at = scan[tid] - mine;
  for (std::int32_t p = b0; p < b1; ++p) {
    const std::int32_t chunks = (per_pair[p] + c - 1) / c;
    for (std::int32_t k = 0; k < chunks; ++k) {
      a.work[at++] = make_int2(p, k);
    }
    per_pair[p] = chunks;
  }
  if (tid == plan_threads - 1) {
    a.plan[plan_items] = scan[tid];
    a.plan[plan_per_chunk] = c;
  }
}

// Combines the chunks of a split pair for query heads [g0, g0 + gn): out = sum_c o_c
// e^(m_c - M) / sum_c l_c e^(m_c - M), final_ml = (M, sum_c l_c e^(m_c - M)). Called by the
// block that finished the pair's last chunk: the other chunks were written by other blocks in
// this launch, so they are read past this SM's L1 (__ldcg).
template <int D>
__device__ void merge_chunks(const decode_kernel_args& a, std::int32_t pair, std::int32_t g0,
                             std::int32_t gn, std::int32_t chunks) {
  for (int i = static_cast<int>(threadIdx.x); i < gn * D; i += decode_threads) {
    const std::int32_t g = g0 + i / D;
    const int d = i % D;
    const std::size_t first = static_cast<std::size_t>(pair) * a.splits * a.group + g;
    float mx = -INFINITY;
    for (std::int32_t c = 0; c < chunks; ++c) {
      mx = fmaxf(mx, __ldcg(&a.partial_ml[first + static_cast<std::size_t>(c) * a.group]).x);
    }
    float l = 0.0F;
    float o = 0.0F;
#pragma unroll 4
    for (std::int32_t c = 0; c < chunks; ++c) {
      const std::size_t at = first + static_cast<std::size_t>(c) * a.group;
      const float2 ml = __ldcg(&a.partial_ml[at]);
      const float f = __expf(ml.x - mx);
      l = fmaf(ml.y, f, l);
      o = fmaf(__ldcg(&a.partial_o[at * D + d]), f, o);
    }
    const std::size_t pg = static_cast<std::size_t>(pair) * a.group + g;
    a.out[pg * D + d] = o / l;
    if (d == 0) {
      a.final_ml[pg] = make_float2(mx, l);
    }
  }
}

// Work item blockIdx.x of the plan for query heads [g0, g0 + MAXG) of its pair's group. Grid:
// (the most items the plan can make: max(wave, pairs), or fewer when the call has fewer tiles;
// ceil(group / MAXG)); blocks past the plan's items return at once.
// Occupancy floor: 4 CTAs (16 warps, 64 KiB of loads in flight) per SM up to 4 query heads per
// block (at most 128 registers), 2 for 8 (the accumulators of 8 heads need ~210).
template <int MAXG>
inline constexpr int decode_min_blocks = MAXG <= 4 ? 4 : 2;

template <class T, int D, int MAXG>
__global__ void __launch_bounds__(decode_threads, decode_min_blocks<MAXG>)
    decode_partial_kernel(store_view<T> s, batch_heads batch, decode_kernel_args a) {
  using shape = row_shape<T, D>;
  extern __shared__ float smem[];
  auto* row_off = reinterpret_cast<unsigned long long*>(smem);     // [decode_chunk]
  auto* page_s = reinterpret_cast<std::int32_t*>(row_off + decode_chunk); // [decode_chunk + 2]
  float* q_s = reinterpret_cast<float*>(page_s + decode_chunk + 2);       // [MAXG][D]
  float* red = q_s + MAXG * D;                                            // [rows][MAXG][D]
  auto* ml_s = reinterpret_cast<float2*>(red + shape::rows * MAXG * D);   // [rows][MAXG]

  const std::int32_t item = static_cast<std::int32_t>(blockIdx.x);
  if (item >= a.plan[plan_items]) {
    return; // the grid covers the most items a plan can make; this call made fewer
  }
  const int2 w = a.work[item];
  const std::int32_t pair = w.x;
  const std::int32_t chunk = w.y;
  const std::int32_t g0 = static_cast<std::int32_t>(blockIdx.z) * MAXG;
  const std::int32_t gn = min(MAXG, a.group - g0);
  const std::int32_t head = batch.head(pair);
  const std::int32_t span = a.plan[plan_per_chunk] * decode_chunk; // tokens per chunk
  const std::int32_t first = chunk * span; // < the pair's tokens: the plan makes no empty item
  const std::int32_t end = min(clamped_size(s.sizes[head], a.chunks), first + span);
  const int tid = static_cast<int>(threadIdx.x);
  const int rg = tid / shape::tpr;
  const int lane = tid % shape::tpr;
  const std::int32_t ps = s.page_size;
  auto page_of = [&](std::int32_t slot) {
    return a.page_shift >= 0 ? slot >> a.page_shift : slot / ps;
  };
  const std::size_t v_off = static_cast<std::size_t>(ps) * D * sizeof(T); // values after keys
  for (int i = tid; i < MAXG * D; i += decode_threads) {
    const int g = i / D;
    q_s[i] = g < gn ? a.q[(static_cast<std::size_t>(pair) * a.group + g0 + g) * D + i % D] : 0.0F;
  }

  // Online softmax per row group, carried across the chunk's tiles: rows base + u * rows + rg
  // of each step. Every thread runs the same steps (dead rows on zeros): group_sum's shuffles
  // name the whole warp.
  float m[MAXG];
  float l[MAXG];
  float acc[MAXG][shape::nv][shape::ve] = {};
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0F;
  }
  for (std::int32_t begin = first; begin < end; begin += decode_chunk) {
    const std::int32_t count = min(decode_chunk, end - begin);
    // Stage the tile's page ids (one coalesced read), then each row's key offset: the only
    // divisions by page_size of the kernel, once per row and tile (a shift for powers of 2).
    const std::int32_t p0 = page_of(begin);
    const std::int32_t np = page_of(begin + count - 1) - p0 + 1;
    const std::int32_t* table = s.table + static_cast<std::size_t>(head) * s.table_stride + p0;
    for (int i = tid; i < np; i += decode_threads) {
      page_s[i] = table[i];
    }
    __syncthreads();
    for (int r = tid; r < count; r += decode_threads) {
      const std::int32_t slot = begin + r;
      const std::int32_t p = page_of(slot);
      row_off[r] = static_cast<unsigned long long>(page_s[p - p0]) * s.page_bytes +
                   static_cast<unsigned long long>(slot - p * ps) * D * sizeof(T);
    }
    __syncthreads();

    float* lg =
        a.logits + (static_cast<std::size_t>(pair) * a.group + g0) * a.token_stride + begin;
    for (int base = 0; base < count; base += shape::step_rows) {
      uint4 kr[shape::unroll][shape::nv];
      uint4 vr[shape::unroll][shape::nv];
      // All of the step's K and V loads are issued before any is used.
#pragma unroll
      for (int u = 0; u < shape::unroll; ++u) {
        const int r = base + u * shape::rows + rg;
        const bool live = r < count;
        const auto* kp = reinterpret_cast<const std::byte*>(s.pool) + (live ? row_off[r] : 0);
#pragma unroll
        for (int v = 0; v < shape::nv; ++v) {
          const std::size_t at = static_cast<std::size_t>(lane + v * shape::tpr) * 16;
          kr[u][v] =
              live ? __ldg(reinterpret_cast<const uint4*>(kp + at)) : make_uint4(0, 0, 0, 0);
          vr[u][v] = live ? __ldg(reinterpret_cast<const uint4*>(kp + v_off + at))
                          : make_uint4(0, 0, 0, 0);
        }
      }
      float kf[shape::unroll][shape::nv][shape::ve];
#pragma unroll
      for (int u = 0; u < shape::unroll; ++u) {
#pragma unroll
        for (int v = 0; v < shape::nv; ++v) {
          unpack_vec<T>(kr[u][v], kf[u][v]);
        }
      }
      // Query head outer, rows inner: each slice of q is read from shared memory once per
      // step.
      float sc[shape::unroll][MAXG];
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        float qf[shape::nv][shape::ve];
#pragma unroll
        for (int v = 0; v < shape::nv; ++v) {
#pragma unroll
          for (int e = 0; e < shape::ve; ++e) {
            qf[v][e] = q_s[g * D + (lane + v * shape::tpr) * shape::ve + e];
          }
        }
#pragma unroll
        for (int u = 0; u < shape::unroll; ++u) {
          const int r = base + u * shape::rows + rg;
          const bool live = r < count;
          float dot = 0.0F;
#pragma unroll
          for (int v = 0; v < shape::nv; ++v) {
#pragma unroll
            for (int e = 0; e < shape::ve; ++e) {
              dot = fmaf(qf[v][e], kf[u][v][e], dot);
            }
          }
          dot = group_sum<shape::tpr>(dot) * a.scale;
          sc[u][g] = live ? dot : -INFINITY;
          if (live && lane == 0 && g < gn) {
            lg[static_cast<std::size_t>(g) * a.token_stride + r] = dot;
          }
        }
      }
      float vf[shape::unroll][shape::nv][shape::ve];
#pragma unroll
      for (int u = 0; u < shape::unroll; ++u) {
#pragma unroll
        for (int v = 0; v < shape::nv; ++v) {
          unpack_vec<T>(vr[u][v], vf[u][v]);
        }
      }
      // Rescale once per step: m' = max(m, s_u), acc = acc e^(m - m') + sum_u e^(s_u - m') v_u.
#pragma unroll
      for (int g = 0; g < MAXG; ++g) {
        float mx = m[g];
#pragma unroll
        for (int u = 0; u < shape::unroll; ++u) {
          mx = fmaxf(mx, sc[u][g]);
        }
        if (mx == -INFINITY) {
          continue; // no live row yet in this row group (uniform across its lanes)
        }
        const float alpha = __expf(m[g] - mx); // 0 while m is -inf
        float p[shape::unroll];
        float psum = 0.0F;
#pragma unroll
        for (int u = 0; u < shape::unroll; ++u) {
          p[u] = __expf(sc[u][g] - mx); // 0 for dead rows
          psum += p[u];
        }
        l[g] = l[g] * alpha + psum;
        m[g] = mx;
#pragma unroll
        for (int v = 0; v < shape::nv; ++v) {
#pragma unroll
          for (int e = 0; e < shape::ve; ++e) {
            float o = acc[g][v][e] * alpha;
#pragma unroll
            for (int u = 0; u < shape::unroll; ++u) {
              o = fmaf(p[u], vf[u][v][e], o);
            }
            acc[g][v][e] = o;
          }
        }
      }
    }
    __syncthreads(); // every row of the tile is read before the next tile is staged
  }

  // Merge the row groups through shared memory (the same log-sum-exp rule as the chunks').
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
#pragma unroll
    for (int v = 0; v < shape::nv; ++v) {
#pragma unroll
      for (int e = 0; e < shape::ve; ++e) {
        red[(rg * MAXG + g) * D + (lane + v * shape::tpr) * shape::ve + e] = acc[g][v][e];
      }
    }
    if (lane == 0) {
      ml_s[rg * MAXG + g] = make_float2(m[g], l[g]);
    }
  }
  __syncthreads();
  // Read only now, so that no register holds it across the tiles.
  const std::int32_t chunks = a.plan[plan_pairs + pair];
  const std::size_t pg = static_cast<std::size_t>(pair) * a.group + g0;
  const std::size_t base = (static_cast<std::size_t>(pair) * a.splits + chunk) * a.group + g0;
  for (int i = tid; i < gn * D; i += decode_threads) {
    const int g = i / D;
    const int d = i % D;
    float mx = -INFINITY;
    for (int r = 0; r < shape::rows; ++r) {
      mx = fmaxf(mx, ml_s[r * MAXG + g].x);
    }
    float sum = 0.0F;
    float o = 0.0F;
    for (int r = 0; r < shape::rows; ++r) {
      const float2 ml = ml_s[r * MAXG + g];
      const float f = ml.x == -INFINITY ? 0.0F : __expf(ml.x - mx);
      sum += ml.y * f;
      o = fmaf(red[(r * MAXG + g) * D + d], f, o);
    }
    if (chunks == 1) { // the pair's only chunk: finish it here
      a.out[(pg + g) * D + d] = o / sum;
      if (d == 0) {
        a.final_ml[pg + g] = make_float2(mx, sum);
      }
    } else {
      a.partial_o[(base + g) * D + d] = o;
      if (d == 0) {
        a.partial_ml[base + g] = make_float2(mx, sum);
      }
    }
  }
  if (chunks == 1) {
    return;
  }
  // The block that finishes a split pair's last chunk merges its chunks.
  std::int32_t* done = a.done + static_cast<std::size_t>(pair) * gridDim.z + blockIdx.z;
  if (last_to_arrive(done, chunks)) {
    merge_chunks<D>(a, pair, g0, gn, chunks);
  }
}

} // namespace detail
} // namespace kvsieve::cuda
