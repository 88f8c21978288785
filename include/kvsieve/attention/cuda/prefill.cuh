// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Causal prefill attention on the device, the CUDA twin of kvsieve::causal_attention plus the
/// profiler's per-column statistics (kvsieve::head_stats), without materialising L x L.
///
/// Pass 1 (always): FlashAttention-style tiles with online softmax. A block owns 64 query
/// vectors (the query heads that share one KV head, times a run of rows) and streams that KV
/// head's K/V through shared memory once for all of them (GQA); it writes `out` and, when
/// statistics are requested, each row's log-sum-exp.
/// Pass 2 (statistics only): the recovery statistics need A[i, j] with the row's final
/// normaliser, so the logits are recomputed with the known log-sum-exp (FlashAttention-2's
/// backward order: a block owns 64 key columns of one query head and streams the query rows
/// below them). Each column is summed inside one block and written once, so the statistics
/// are deterministic, need no atomics and no zeroing: the stats buffers are overwritten.
/// (Why not pass 1's row order with atomicAdd: L / 64 atomics per column, a memset first, and a
/// summation order that changes run to run, so the profiler could pick a different policy for
/// the same prompt when two candidates tie; owning columns costs nothing extra.)
/// Cost of pass 2: the Q.K^T half of pass 1's FLOPs plus one exp per element, no V. On sm_80+
/// its Q.K^T runs on tensor cores as 3xTF32 (fp32-level error, qk_tile_tf32), so what remains
/// is mostly the exp and the column sums; below sm_80 it is pass 1's fp32 FMA tile.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <kvsieve/attention/prefill.hpp>
#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/core/error.hpp>
#include <kvsieve/policy/ranking.hpp>
#include <kvsieve/profile/attention_stats.hpp>

namespace kvsieve::cuda {

/// Statistics the recovery profiler needs, per query head (device pointers, float, row-major):
///   score  [n_head_q][L]               sum over all rows i of A[i, j]
///   colsum [n_head_q][L]               sum over recovery rows i >= first_row of A[i, j]
///   near   [n_head_q][n_windows][L]    sum over recovery rows i with j <= i < j + w of A[i, j]
///   sourced [n_head_q][n_sources][L]  sum over rows i of weight_k(i) A[i, j]: the score sources
///                                      of budgets ranked from other rows (policy/ranking.hpp's
///                                      score_source; TOVA's last row, SnapKV's observation
///                                      window, a decayed sum), pooling excluded (the host pools)
/// exactly as kvsieve::head_stats::accumulate_row defines them (head_stats::assign loads them).
/// Every element is overwritten; `near` may be null when n_windows == 0, `sourced` when
/// n_sources == 0.
struct prefill_stats {
  float* score = nullptr;
  float* colsum = nullptr;
  float* near = nullptr;
  std::array<std::int32_t, 8> windows{}; // each > 0
  std::int32_t n_windows = 0;
  std::int32_t first_row = 0;
  float* sourced = nullptr;
  std::array<score_source, 4> sources{}; // pooling is ignored here
  std::int32_t n_sources = 0;
};

namespace detail {

inline constexpr int prefill_threads = 256; // a 16 x 16 grid of threads (ty, tx)
inline constexpr int prefill_rows = 64;     // query vectors per tile: 4 per thread row ty
inline constexpr int attention_cols = 32;   // keys per pass-1 tile (2 per thread column tx)
inline constexpr int stats_cols = 64;       // keys per pass-2 block (4 per thread column tx)
inline constexpr float log2e = 1.4426950408889634F;

/// Shared-memory row stride in floats: D + 4 puts eight consecutive rows' float4 on 32 distinct
/// banks, so the 16 key rows read together in qk_tile are conflict-free.
template <int D>
inline constexpr int row_stride = D + 4;
/// P rows are BN + 16 floats apart so the two rows one warp writes land on disjoint banks.
inline constexpr int p_stride = attention_cols + 16;
inline constexpr int red_stride = stats_cols + 16;
/// Pass 2's logit tile [64][s_stride]: rows 80 floats apart put the two rows a warp reads
/// (16 columns each) on disjoint banks; 80 is a multiple of 4, as WMMA's float stores need.
inline constexpr int s_stride = stats_cols + 16;

/// P.V column ownership: thread tx owns columns c * 16 * vec + tx * vec + e (e < vec), which keeps
/// a warp's V reads contiguous; vec = 4 (float4) except for D = 32.
template <int D>
inline constexpr int pv_vec = D >= 64 ? 4 : 2;
template <int D>
inline constexpr int pv_chunks = D / (16 * pv_vec<D>);

template <class T>
__device__ __forceinline__ auto to_float(T x) -> float {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else if constexpr (std::is_same_v<T, __half>) {
    return __half2float(x);
  } else {
    return __bfloat162float(x);
  }
}

/// Copies `rows` rows of D elements into shared floats [rows][row_stride<D>]; row_ptr(m) is the
/// global row or nullptr (then zeros, so masked keys never meet uninitialised values).
/// `vec` selects 16-byte loads, legal when every row starts 16-byte aligned.
template <int D, class T, class RowPtr>
__device__ void load_tile(float* dst, int rows, RowPtr row_ptr, bool vec) {
  constexpr int stride = row_stride<D>;
  constexpr int per_load = 16 / static_cast<int>(sizeof(T));
  if (vec) {
    constexpr int loads_per_row = D / per_load;
    for (int idx = static_cast<int>(threadIdx.x); idx < rows * loads_per_row;
         idx += prefill_threads) {
      const int m = idx / loads_per_row;
      const int c = (idx % loads_per_row) * per_load;
      const T* src = row_ptr(m);
      float vals[per_load];
      if (src == nullptr) {
#pragma unroll
        for (int e = 0; e < per_load; ++e) {
          vals[e] = 0.0F;
        }
      } else {
        const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src + c));
        T elems[per_load];
        std::memcpy(elems, &raw, sizeof(raw));
#pragma unroll
        for (int e = 0; e < per_load; ++e) {
          vals[e] = to_float(elems[e]);
        }
      }
      float* out = dst + m * stride + c;
#pragma unroll
      for (int e = 0; e < per_load; e += 4) {
        *reinterpret_cast<float4*>(out + e) =
            make_float4(vals[e], vals[e + 1], vals[e + 2], vals[e + 3]);
      }
    }
  } else {
    for (int idx = static_cast<int>(threadIdx.x); idx < rows * D; idx += prefill_threads) {
      const int m = idx / D;
      const int c = idx % D;
      const T* src = row_ptr(m);
      dst[m * stride + c] = src == nullptr ? 0.0F : to_float(src[c]);
    }
  }
}

/// s[a][b] = q[ty + 16a] . k[tx + 16b] over shared tiles (fp32 FMA, register-blocked 4 x NB).
template <int D, int NB>
__device__ __forceinline__ void qk_tile(const float* sq, const float* sk, int ty, int tx,
                                        float (&s)[4][NB]) {
  constexpr int stride = row_stride<D>;
#pragma unroll
  for (int a = 0; a < 4; ++a) {
#pragma unroll
    for (int b = 0; b < NB; ++b) {
      s[a][b] = 0.0F;
    }
  }
#pragma unroll 4
  for (int d = 0; d < D; d += 4) {
    float4 qa[4];
    float4 kb[NB];
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      qa[a] = *reinterpret_cast<const float4*>(sq + (ty + 16 * a) * stride + d);
    }
#pragma unroll
    for (int b = 0; b < NB; ++b) {
      kb[b] = *reinterpret_cast<const float4*>(sk + (tx + 16 * b) * stride + d);
    }
#pragma unroll
    for (int a = 0; a < 4; ++a) {
#pragma unroll
      for (int b = 0; b < NB; ++b) {
        s[a][b] = fmaf(qa[a].x, kb[b].x, s[a][b]);
        s[a][b] = fmaf(qa[a].y, kb[b].y, s[a][b]);
        s[a][b] = fmaf(qa[a].z, kb[b].z, s[a][b]);
        s[a][b] = fmaf(qa[a].w, kb[b].w, s[a][b]);
      }
    }
  }
}

/// x = hi + lo + r with hi = tf32(x), lo = tf32(x - hi), |r| <= 2^-22 |x|: the operand split of
/// 3xTF32 (CUTLASS's "fast accurate" GEMMs), applied to every element of a fragment.
template <class Frag>
__device__ __forceinline__ void split_tf32(Frag& hi, Frag& lo) {
#pragma unroll
  for (int e = 0; e < hi.num_elements; ++e) {
    const float x = hi.x[e];
    hi.x[e] = nvcuda::wmma::__float_to_tf32(x);
    lo.x[e] = nvcuda::wmma::__float_to_tf32(x - hi.x[e]);
  }
}

/// Pass 2's logit tile on tensor cores: ss[m][n] = q[m] . k[n] for the 64 x 64 tile, then
/// s[a][b] = ss[ty + 16a][tx + 16b] (qk_tile's layout). 3xTF32 (hi.hi + hi.lo + lo.hi) keeps
/// fp32-level error (each product within about 2^-21 relative; the lo.lo term and the split's
/// residual are below that) at about three TF32 MMAs per 16 x 16 x 8 step. K held as __half or
/// __nv_bfloat16 widens to values TF32 holds exactly (10 and 7 stored mantissa bits), so its lo
/// part is zero and that MMA is skipped. Warp w computes rows 16 (w / 2) .. + 16 and the two
/// 16-column blocks 2 (w % 2), 2 (w % 2) + 1. Ends with __syncthreads (ss complete); the caller
/// synchronises before ss is written again.
template <int D, bool KExact>
__device__ __forceinline__ void qk_tile_tf32(const float* sq, const float* sk, float* ss, int ty,
                                             int tx, float (&s)[4][4]) {
  namespace wmma = nvcuda::wmma;
  constexpr int stride = row_stride<D>;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int rb = warp / 2;
  const int cb = (warp % 2) * 2;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2];
  wmma::fill_fragment(acc[0], 0.0F);
  wmma::fill_fragment(acc[1], 0.0F);
#pragma unroll 2
  for (int d = 0; d < D; d += 8) {
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a_hi;
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a_lo;
    wmma::load_matrix_sync(a_hi, sq + rb * 16 * stride + d, stride);
    split_tf32(a_hi, a_lo);
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> b_hi;
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> b_lo;
      wmma::load_matrix_sync(b_hi, sk + (cb + c) * 16 * stride + d, stride);
      split_tf32(b_hi, b_lo);
      if constexpr (!KExact) {
        wmma::mma_sync(acc[c], a_hi, b_lo, acc[c]);
      }
      wmma::mma_sync(acc[c], a_lo, b_hi, acc[c]);
      wmma::mma_sync(acc[c], a_hi, b_hi, acc[c]);
    }
  }
#pragma unroll
  for (int c = 0; c < 2; ++c) {
    wmma::store_matrix_sync(ss + rb * 16 * s_stride + (cb + c) * 16, acc[c], s_stride,
                            wmma::mem_row_major);
  }
  __syncthreads();
#pragma unroll
  for (int a = 0; a < 4; ++a) {
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      s[a][b] = ss[(ty + 16 * a) * s_stride + tx + 16 * b];
    }
  }
}

/// Reduction over the 16 lanes that share a thread row ty (lanes 16 apart hold another row).
template <class Op>
__device__ __forceinline__ auto reduce16(float x, Op op) -> float {
#pragma unroll
  for (int off = 8; off > 0; off /= 2) {
    x = op(x, __shfl_xor_sync(0xffffffffU, x, off));
  }
  return x;
}

struct attention_args {
  const float* q;        // [L, n_head_q, D]
  const void* k;         // [L, n_head_kv, D] of KV
  const void* v;         // [L, n_head_kv, D] of KV
  float* out;            // [L, n_head_q, D]
  float* lse2;           // [n_head_q, L] log2-domain log-sum-exp, or nullptr
  std::int32_t length;
  std::int32_t n_head_q;
  std::int32_t n_head_kv;
  std::int32_t group;           // n_head_q / n_head_kv
  std::int32_t heads_per_block; // min(group, 64); a larger group is split over head chunks
  std::int32_t head_chunks;
  std::int32_t rows_per_block; // 64 / heads_per_block
  std::int32_t row_tiles;
  float scale_log2; // scale * log2(e): softmax in base 2 (exp2f), the same A
  bool q_vec;
  bool kv_vec;
  bool out_vec;
};

struct stats_args {
  const float* q;
  const void* k;
  const float* lse2;
  float* score;  // [n_head_q, L]
  float* colsum; // [n_head_q, L]
  float* near;   // [n_head_q, n_windows, L]
  float* sourced; // [n_head_q, n_sources, L]
  std::int32_t length;
  std::int32_t n_head_q;
  std::int32_t n_head_kv;
  std::int32_t group;
  std::int32_t col_tiles;
  std::int32_t first_row;
  std::int32_t n_windows;
  std::int32_t max_window;
  std::int32_t windows[8];
  std::int32_t n_sources;
  std::int32_t source_first[4]; // the first row a source reads (L - last_rows, or 0)
  float source_log2_decay[4];   // log2 of its decay (0: every row weighs 1)
  float scale_log2;
  bool q_vec;
  bool kv_vec;
};
static_assert(std::is_trivially_copyable_v<attention_args> &&
              std::is_trivially_copyable_v<stats_args>);

template <int D>
constexpr auto attention_smem_bytes() -> int {
  return static_cast<int>(sizeof(float)) *
         ((prefill_rows + 2 * attention_cols) * row_stride<D> + prefill_rows * p_stride);
}
template <int D>
constexpr auto stats_smem_bytes() -> int {
  // The logit tile ss doubles as the column-sum scratch `red` (16 rows) after the last tile.
  static_assert(16 * red_stride <= prefill_rows * s_stride);
  return static_cast<int>(sizeof(float)) *
         ((prefill_rows + stats_cols) * row_stride<D> + prefill_rows + prefill_rows * s_stride);
}

/// Pass 1. Block b serves KV head (b % (n_head_kv * head_chunks)) / head_chunks; its row tiles
/// are issued longest first (the last rows attend to the most keys), so the tail of the grid is
/// short tiles. Query vector m of the tile is (head head0 + m / rows_per_block, row
/// row0 + m % rows_per_block).
template <int D, class KV>
__global__ void __launch_bounds__(prefill_threads)
    prefill_attention_kernel(const attention_args a) {
  constexpr int stride = row_stride<D>;
  constexpr int nb = attention_cols / 16;
  constexpr int vec = pv_vec<D>;
  constexpr int chunks = pv_chunks<D>;
  extern __shared__ float4 smem_f4[];
  float* sq = reinterpret_cast<float*>(smem_f4); // [64][stride]
  float* sk = sq + prefill_rows * stride;        // [BN][stride]
  float* sv = sk + attention_cols * stride;      // [BN][stride]
  float* sp = sv + attention_cols * stride;      // [64][p_stride]

  const int tx = static_cast<int>(threadIdx.x) % 16;
  const int ty = static_cast<int>(threadIdx.x) / 16;
  const int groups = a.n_head_kv * a.head_chunks;
  const int bid = static_cast<int>(blockIdx.x);
  const int kvh = (bid % groups) / a.head_chunks;
  const int chunk = (bid % groups) % a.head_chunks;
  const int row0 = (a.row_tiles - 1 - bid / groups) * a.rows_per_block;
  const int head0 = kvh * a.group + chunk * a.heads_per_block;
  const int heads_here = min(a.heads_per_block, a.group - chunk * a.heads_per_block);
  const int length = a.length;

  load_tile<D, float>(
      sq, prefill_rows,
      [&](int m) -> const float* {
        const int hl = m / a.rows_per_block;
        const int r = row0 + m % a.rows_per_block;
        return hl < heads_here && r < length
                   ? a.q + (static_cast<std::int64_t>(r) * a.n_head_q + head0 + hl) * D
                   : nullptr;
      },
      a.q_vec);

  int my_row[4]; // -1: padding vector, every key masked
  float m_run[4];
  float l_run[4];
  float acc[4][chunks * vec];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = ty + 16 * i;
    const int hl = m / a.rows_per_block;
    const int r = row0 + m % a.rows_per_block;
    my_row[i] = hl < heads_here && r < length ? r : -1;
    m_run[i] = -std::numeric_limits<float>::infinity();
    l_run[i] = 0.0F;
#pragma unroll
    for (int c = 0; c < chunks * vec; ++c) {
      acc[i][c] = 0.0F;
    }
  }

  const KV* k = static_cast<const KV*>(a.k);
  const KV* v = static_cast<const KV*>(a.v);
  const int kv_end = min(length, row0 + a.rows_per_block); // causal: no row here sees past it
  for (int kv0 = 0; kv0 < kv_end; kv0 += attention_cols) {
    __syncthreads(); // the previous tile's readers are done with sk, sv, sp
    const auto kv_row = [&](const KV* base) {
      return [&, base](int n) -> const KV* {
        const int j = kv0 + n;
        return j < kv_end ? base + (static_cast<std::int64_t>(j) * a.n_head_kv + kvh) * D
                          : nullptr;
      };
    };
    load_tile<D, KV>(sk, attention_cols, kv_row(k), a.kv_vec);
    load_tile<D, KV>(sv, attention_cols, kv_row(v), a.kv_vec);
    __syncthreads();

    float s[4][nb];
    qk_tile<D, nb>(sq, sk, ty, tx, s);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float tile_max = -std::numeric_limits<float>::infinity();
#pragma unroll
      for (int b = 0; b < nb; ++b) {
        const int j = kv0 + tx + 16 * b;
        s[i][b] = j <= my_row[i] ? s[i][b] * a.scale_log2 : -std::numeric_limits<float>::infinity();
        tile_max = fmaxf(tile_max, s[i][b]);
      }
      tile_max = reduce16(tile_max, [](float x, float y) { return fmaxf(x, y); });
      const float m_new = fmaxf(m_run[i], tile_max);
      // A row with no unmasked key yet keeps m = -inf; subtracting 0 instead avoids inf - inf.
      const float m_use = m_new == -std::numeric_limits<float>::infinity() ? 0.0F : m_new;
      const float alpha = exp2f(m_run[i] - m_use);
      float row_sum = 0.0F;
#pragma unroll
      for (int b = 0; b < nb; ++b) {
        const float p = exp2f(s[i][b] - m_use);
        sp[(ty + 16 * i) * p_stride + tx + 16 * b] = p;
        row_sum += p;
      }
      row_sum = reduce16(row_sum, [](float x, float y) { return x + y; });
      l_run[i] = l_run[i] * alpha + row_sum;
      m_run[i] = m_new;
#pragma unroll
      for (int c = 0; c < chunks * vec; ++c) {
        acc[i][c] *= alpha;
      }
    }
    __syncthreads();

    // P is read four keys at a time (one float4 per row); keys past kv_end have p = 0 and
    // zero V rows, so rounding n_end up to 4 adds nothing.
    const int n_end = min(attention_cols, kv_end - kv0);
    for (int n4 = 0; n4 < n_end; n4 += 4) {
      float4 p4[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        p4[i] = *reinterpret_cast<const float4*>(sp + (ty + 16 * i) * p_stride + n4);
      }
#pragma unroll
      for (int dn = 0; dn < 4; ++dn) {
        const int n = n4 + dn;
        float p[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          p[i] = dn == 0 ? p4[i].x : dn == 1 ? p4[i].y : dn == 2 ? p4[i].z : p4[i].w;
        }
#pragma unroll
        for (int c = 0; c < chunks; ++c) {
          const float* vrow = sv + n * stride + c * 16 * vec + tx * vec;
          float vv[vec];
          if constexpr (vec == 4) {
            const float4 x = *reinterpret_cast<const float4*>(vrow);
            vv[0] = x.x, vv[1] = x.y, vv[2] = x.z, vv[3] = x.w;
          } else {
            const float2 x = *reinterpret_cast<const float2*>(vrow);
            vv[0] = x.x, vv[1] = x.y;
          }
#pragma unroll
          for (int i = 0; i < 4; ++i) {
#pragma unroll
            for (int e = 0; e < vec; ++e) {
              acc[i][c * vec + e] = fmaf(p[i], vv[e], acc[i][c * vec + e]);
            }
          }
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (my_row[i] < 0) {
      continue;
    }
    const int m = ty + 16 * i;
    const int head = head0 + m / a.rows_per_block;
    const float inv = 1.0F / l_run[i];
    float* orow = a.out + (static_cast<std::int64_t>(my_row[i]) * a.n_head_q + head) * D;
#pragma unroll
    for (int c = 0; c < chunks; ++c) {
      float* dst = orow + c * 16 * vec + tx * vec;
      const float* x = &acc[i][c * vec];
      bool stored = false;
      if constexpr (vec == 4) {
        if (a.out_vec) {
          *reinterpret_cast<float4*>(dst) =
              make_float4(x[0] * inv, x[1] * inv, x[2] * inv, x[3] * inv);
          stored = true;
        }
      }
      if (!stored) {
#pragma unroll
        for (int e = 0; e < vec; ++e) {
          dst[e] = x[e] * inv;
        }
      }
    }
    if (a.lse2 != nullptr && tx == 0) {
      a.lse2[static_cast<std::int64_t>(head) * length + my_row[i]] = m_run[i] + log2f(l_run[i]);
    }
  }
}

/// Sums part[b] (column tx + 16b of this thread's rows) over the 16 thread rows and writes
/// dst[j0 + column] for columns inside the prompt.
__device__ __forceinline__ void store_column_sums(const float (&part)[4], float* red, float* dst,
                                                  int j0, int length, int ty, int tx) {
  __syncthreads(); // red is free
#pragma unroll
  for (int b = 0; b < 4; ++b) {
    red[ty * red_stride + tx + 16 * b] = part[b];
  }
  __syncthreads();
  if (threadIdx.x < stats_cols) {
    float total = 0.0F;
#pragma unroll
    for (int y = 0; y < 16; ++y) {
      total += red[y * red_stride + static_cast<int>(threadIdx.x)];
    }
    if (const int j = j0 + static_cast<int>(threadIdx.x); j < length) {
      dst[j] = total;
    }
  }
}

/// Pass 2 (FastGen §3.3, Eq. 1 statistics). Block b owns key columns [j0, j0 + 64) of query
/// head b % n_head_q; column tiles are issued from the first (the most rows below it) on.
/// A[i, j] = exp2(s2[i, j] - lse2[i]) with pass 1's row normaliser.
template <int D, class KV>
__global__ void __launch_bounds__(prefill_threads) prefill_stats_kernel(const stats_args a) {
  constexpr int stride = row_stride<D>;
  extern __shared__ __align__(128) float4 stats_smem[]; // WMMA tiles need 32-byte alignment
  float* sk = reinterpret_cast<float*>(stats_smem);     // [64][stride]
  float* sq = sk + stats_cols * stride;                 // [64][stride]
  float* slse = sq + prefill_rows * stride;             // [64]
  float* ss = slse + prefill_rows;                      // [64][s_stride], 32-byte aligned
  float* red = ss;                                      // [16][red_stride], after the last tile

  const int tx = static_cast<int>(threadIdx.x) % 16;
  const int ty = static_cast<int>(threadIdx.x) / 16;
  const int head = static_cast<int>(blockIdx.x) % a.n_head_q;
  const int kvh = head / a.group;
  const int j0 = static_cast<int>(blockIdx.x) / a.n_head_q * stats_cols;
  const int length = a.length;

  const KV* k = static_cast<const KV*>(a.k);
  load_tile<D, KV>(
      sk, stats_cols,
      [&](int n) -> const KV* {
        const int j = j0 + n;
        return j < length ? k + (static_cast<std::int64_t>(j) * a.n_head_kv + kvh) * D : nullptr;
      },
      a.kv_vec);

  float score[4] = {};
  float colsum[4] = {};
  float near[8][4] = {};
  float sourced[4][4] = {};
  // Rows above j0 see none of these columns (causal); j0 is a multiple of 64, so tiles align.
  for (int i0 = j0; i0 < length; i0 += prefill_rows) {
    __syncthreads(); // the previous tile's readers are done with sq, slse
    load_tile<D, float>(
        sq, prefill_rows,
        [&](int m) -> const float* {
          const int i = i0 + m;
          return i < length ? a.q + (static_cast<std::int64_t>(i) * a.n_head_q + head) * D
                            : nullptr;
        },
        a.q_vec);
    if (threadIdx.x < prefill_rows) {
      const int i = i0 + static_cast<int>(threadIdx.x);
      slse[threadIdx.x] = i < length ? a.lse2[static_cast<std::int64_t>(head) * length + i] : 0.0F;
    }
    __syncthreads();

    float s[4][4];
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    qk_tile_tf32<D, !std::is_same_v<KV, float>>(sq, sk, ss, ty, tx, s);
#else
    qk_tile<D, 4>(sq, sk, ty, tx, s); // no TF32 tensor cores before sm_80
#endif
    const bool recovery = i0 + prefill_rows - 1 >= a.first_row;
    // The band j <= i < j + w touches this tile only if its smallest i - j is below w.
    const bool band = recovery && i0 - (j0 + stats_cols - 1) < a.max_window;
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int i = i0 + ty + 16 * r;
      const float lse = slse[ty + 16 * r];
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int j = j0 + tx + 16 * b;
        const float p = j <= i && i < length ? exp2f(s[r][b] * a.scale_log2 - lse) : 0.0F;
        score[b] += p;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          // weight_k(i) = decay^(L - 1 - i) on the source's rows (head_stats::accumulate_row).
          if (k < a.n_sources && i >= a.source_first[k]) {
            const float w = a.source_log2_decay[k] == 0.0F
                                ? 1.0F
                                : exp2f(static_cast<float>(length - 1 - i) *
                                        a.source_log2_decay[k]);
            sourced[k][b] += w * p;
          }
        }
        if (recovery) {
          const float pr = i >= a.first_row ? p : 0.0F;
          colsum[b] += pr;
          if (band) {
#pragma unroll
            for (int w = 0; w < 8; ++w) {
              if (w < a.n_windows && i - j < a.windows[w]) {
                near[w][b] += pr;
              }
            }
          }
        }
      }
    }
  }

  const std::int64_t base = static_cast<std::int64_t>(head) * length;
  store_column_sums(score, red, a.score + base, j0, length, ty, tx);
  store_column_sums(colsum, red, a.colsum + base, j0, length, ty, tx);
#pragma unroll
  for (int w = 0; w < 8; ++w) {
    if (w < a.n_windows) {
      store_column_sums(near[w], red,
                        a.near + (static_cast<std::int64_t>(head) * a.n_windows + w) * length,
                        j0, length, ty, tx);
    }
  }
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if (k < a.n_sources) {
      store_column_sums(sourced[k], red,
                        a.sourced + (static_cast<std::int64_t>(head) * a.n_sources + k) * length,
                        j0, length, ty, tx);
    }
  }
}

inline auto aligned16(const void* p) -> bool {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

template <int D, class KV>
void launch_prefill(attention_args args, const stats_args* stats, cudaStream_t stream) {
  constexpr int attention_bytes = attention_smem_bytes<D>();
  check(cudaFuncSetAttribute(prefill_attention_kernel<D, KV>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, attention_bytes),
        "cudaFuncSetAttribute (prefill_attention_kernel)");
  const auto blocks = static_cast<std::int64_t>(args.row_tiles) * args.n_head_kv * args.head_chunks;
  prefill_attention_kernel<D, KV><<<static_cast<unsigned>(blocks), prefill_threads,
                                    attention_bytes, stream>>>(args);
  check_launch("prefill_attention_kernel");
  if (stats == nullptr) {
    return;
  }
  constexpr int stats_bytes = stats_smem_bytes<D>();
  check(cudaFuncSetAttribute(prefill_stats_kernel<D, KV>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, stats_bytes),
        "cudaFuncSetAttribute (prefill_stats_kernel)");
  const auto stat_blocks = static_cast<std::int64_t>(stats->col_tiles) * stats->n_head_q;
  prefill_stats_kernel<D, KV><<<static_cast<unsigned>(stat_blocks), prefill_threads, stats_bytes,
                                stream>>>(*stats);
  check_launch("prefill_stats_kernel");
}

} // namespace detail

/// Causal softmax attention of a prompt: q [L, n_head_q, D] float, k/v [L, n_head_kv, D] of KV in
/// {float, __half, __nv_bfloat16}, out [L, n_head_q, D] float; fp32 accumulation; GQA: query head
/// qh uses KV head qh / (n_head_q / n_head_kv). stats == nullptr runs the same kernel without
/// statistics (the baseline the <= 15% overhead target is measured against).
/// All pointers are device memory; the work is enqueued on `stream` with no host sync (the
/// statistics' log-sum-exp scratch comes from the stream-ordered pool, cudaMallocAsync).
/// Throws errc::invalid_argument for D not in {32, 64, 128, 256}, length <= 0, n_head_q not a
/// positive multiple of n_head_kv, a non-finite scale, null pointers, n_windows outside [0, 8],
/// a window <= 0 or first_row outside [0, L]; errc::device / out_of_memory from the runtime.
/// Complexity: O(L^2 * D * n_head_q) FLOPs, about 1.5x that with statistics (pass 2 recomputes
/// the logits, on tensor cores from sm_80); O(L * n_head_q) extra device memory, never L x L.
template <class KV>
void prefill_attention(const float* q, const KV* k, const KV* v, float* out, std::int32_t length,
                       std::int32_t n_head_q, std::int32_t n_head_kv, std::int32_t head_dim,
                       float scale, const prefill_stats* stats, cudaStream_t stream) {
  static_assert(std::is_same_v<KV, float> || std::is_same_v<KV, __half> ||
                    std::is_same_v<KV, __nv_bfloat16>,
                "prefill_attention: K/V must be float, __half or __nv_bfloat16");
  constexpr auto bad = errc::invalid_argument;
  expects(head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256, bad, [&] {
    return fmt::format("prefill_attention: head_dim {} is not 32, 64, 128 or 256", head_dim);
  });
  expects(length > 0, bad, "prefill_attention: length must be > 0");
  expects(n_head_kv > 0 && n_head_q > 0 && n_head_q % n_head_kv == 0, bad, [&] {
    return fmt::format("prefill_attention: n_head_q {} is not a positive multiple of n_head_kv {}",
                       n_head_q, n_head_kv);
  });
  expects(std::isfinite(scale), bad, "prefill_attention: scale must be finite");
  expects(q != nullptr && k != nullptr && v != nullptr && out != nullptr, bad,
          "prefill_attention: q, k, v and out must be device pointers, not null");

  detail::attention_args args{};
  args.q = q;
  args.k = k;
  args.v = v;
  args.out = out;
  args.length = length;
  args.n_head_q = n_head_q;
  args.n_head_kv = n_head_kv;
  args.group = n_head_q / n_head_kv;
  args.heads_per_block = std::min(args.group, detail::prefill_rows);
  args.head_chunks = static_cast<std::int32_t>(div_up(args.group, args.heads_per_block));
  args.rows_per_block = detail::prefill_rows / args.heads_per_block;
  args.row_tiles = static_cast<std::int32_t>(div_up(length, args.rows_per_block));
  args.scale_log2 = scale * detail::log2e;
  args.q_vec = detail::aligned16(q);
  args.kv_vec = detail::aligned16(k) && detail::aligned16(v);
  args.out_vec = detail::aligned16(out);
  expects(static_cast<std::int64_t>(args.row_tiles) * n_head_kv * args.head_chunks <
                  std::numeric_limits<std::int32_t>::max() &&
              static_cast<std::int64_t>(div_up(length, detail::stats_cols)) * n_head_q <
                  std::numeric_limits<std::int32_t>::max(),
          bad, "prefill_attention: the prompt needs more blocks than one launch can hold");

  detail::stats_args sargs{};
  if (stats != nullptr) {
    expects(stats->score != nullptr && stats->colsum != nullptr, bad,
            "prefill_attention: stats->score and stats->colsum must not be null");
    expects(stats->n_windows >= 0 && stats->n_windows <= 8, bad, [&] {
      return fmt::format("prefill_attention: n_windows {} is outside [0, 8]", stats->n_windows);
    });
    expects(stats->n_windows == 0 || stats->near != nullptr, bad,
            "prefill_attention: stats->near must not be null when n_windows > 0");
    expects(stats->first_row >= 0 && stats->first_row <= length, bad, [&] {
      return fmt::format("prefill_attention: first_row {} is outside [0, {}]", stats->first_row,
                         length);
    });
    sargs.max_window = 0;
    for (std::int32_t w = 0; w < stats->n_windows; ++w) {
      const auto width = stats->windows[static_cast<std::size_t>(w)];
      expects(width > 0, bad, [&] {
        return fmt::format("prefill_attention: window {} is {}, must be > 0", w, width);
      });
      sargs.windows[w] = width;
      sargs.max_window = std::max(sargs.max_window, width);
    }
    expects(stats->n_sources >= 0 && stats->n_sources <= 4, bad, [&] {
      return fmt::format("prefill_attention: n_sources {} is outside [0, 4]", stats->n_sources);
    });
    expects(stats->n_sources == 0 || stats->sourced != nullptr, bad,
            "prefill_attention: stats->sourced must not be null when n_sources > 0");
    sargs.n_sources = stats->n_sources;
    for (std::int32_t si = 0; si < stats->n_sources; ++si) {
      const auto& src = stats->sources[static_cast<std::size_t>(si)];
      head_stats::check_source(src);
      sargs.source_first[si] = src.last_rows > 0 ? std::max(0, length - src.last_rows) : 0;
      sargs.source_log2_decay[si] = src.decay == 1.0F ? 0.0F : std::log2(src.decay);
    }
    sargs.sourced = stats->sourced;
    sargs.q = q;
    sargs.k = k;
    sargs.score = stats->score;
    sargs.colsum = stats->colsum;
    sargs.near = stats->near;
    sargs.length = length;
    sargs.n_head_q = n_head_q;
    sargs.n_head_kv = n_head_kv;
    sargs.group = args.group;
    sargs.col_tiles = static_cast<std::int32_t>(div_up(length, detail::stats_cols));
    sargs.first_row = stats->first_row;
    sargs.n_windows = stats->n_windows;
    sargs.scale_log2 = args.scale_log2;
    sargs.q_vec = args.q_vec;
    sargs.kv_vec = detail::aligned16(k);

    void* lse = nullptr;
    const auto lse_bytes = static_cast<std::size_t>(n_head_q) * static_cast<std::size_t>(length) *
                           sizeof(float);
    check(cudaMallocAsync(&lse, lse_bytes, stream), "cudaMallocAsync (prefill log-sum-exp)");
    args.lse2 = static_cast<float*>(lse);
    sargs.lse2 = args.lse2;
  }

  const detail::stats_args* sp = stats != nullptr ? &sargs : nullptr;
  try {
    switch (head_dim) {
    case 32:
      detail::launch_prefill<32, KV>(args, sp, stream);
      break;
    case 64:
      detail::launch_prefill<64, KV>(args, sp, stream);
      break;
    case 128:
      detail::launch_prefill<128, KV>(args, sp, stream);
      break;
    default:
      detail::launch_prefill<256, KV>(args, sp, stream);
      break;
    }
  } catch (...) {
    if (args.lse2 != nullptr) {
      (void)cudaFreeAsync(args.lse2, stream);
    }
    throw;
  }
  if (args.lse2 != nullptr) {
    check(cudaFreeAsync(args.lse2, stream), "cudaFreeAsync (prefill log-sum-exp)");
  }
}

} // namespace kvsieve::cuda
