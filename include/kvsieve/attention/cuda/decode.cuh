// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Batched decode attention over ragged paged heads: one launch serves every (sequence, KV head)
/// pair of a layer, each with its own length and page list (what FlashInfer-style kernels, which
/// assume one length per request, do not cover). Split-KV: a block takes one chunk of
/// decode_chunk tokens of one pair for up to 8 query heads of its group, so a long head spreads
/// over many SMs and a short one costs one block; a merge kernel combines the chunks with the
/// log-sum-exp rule. Keys/values are read once per group with 16-byte loads, accumulated in
/// float. Each token's logits are kept (4 bytes per query head, against 2 * head_dim * sizeof(T)
/// of K and V) so that the cache's step kernel turns them into probabilities for the frequent
/// score without a second pass over K.
/// Input layout: q, out [B, n_head_kv * group, head_dim] float; pair p = b * n_head_kv + h.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/core/cuda/numeric.cuh>
#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/core/error.hpp>
#include <kvsieve/store/cuda/paged_store.cuh>

namespace kvsieve::cuda {

/// Tokens per split-KV chunk (a multiple of every sensible page size).
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

/// Scratch of the decode kernels, sized by reserve() from host-known upper bounds.
struct decode_workspace {
  device_buffer<float> partial_o;  ///< [pairs][splits][group][D]
  device_buffer<float2> partial_ml; ///< [pairs][splits][group]: chunk max and sum
  device_buffer<float> logits;     ///< [pairs][group][token_stride]
  device_buffer<float2> final_ml;  ///< [pairs][group]: the head's max and sum
  std::int32_t splits = 0;
  std::int32_t token_stride = 0;

  /// max_tokens: an upper bound of any pair's resident tokens (the layer's length).
  void reserve(std::int32_t pairs, std::int32_t group, std::int32_t head_dim,
               std::int32_t max_tokens) {
    const auto chunks = static_cast<std::int32_t>(div_up(std::max(max_tokens, 1), decode_chunk));
    // Grow geometrically so a growing context reallocates O(log n) times.
    if (chunks > splits) {
      splits = std::max(chunks, 2 * splits);
      token_stride = splits * decode_chunk;
    }
    const auto pg = static_cast<std::size_t>(pairs) * static_cast<std::size_t>(group);
    partial_o.reserve_discard(pg * static_cast<std::size_t>(splits) *
                              static_cast<std::size_t>(head_dim));
    partial_ml.reserve_discard(pg * static_cast<std::size_t>(splits));
    logits.reserve_discard(pg * static_cast<std::size_t>(token_stride));
    final_ml.reserve_discard(pg);
  }
};

namespace detail {

inline constexpr int decode_threads = 128;

template <class T, int D>
struct row_shape {
  static constexpr int ve = vec_elems<T>;         // elements per 16-byte vector
  static constexpr int vpr = D / ve;              // vectors per row
  static constexpr int tpr = vpr < 32 ? vpr : 32; // threads per row
  static constexpr int nv = vpr / tpr;            // vectors per thread
  static constexpr int rows = decode_threads / tpr; // rows in flight per block
};

template <int D, int MAXG>
constexpr auto decode_smem_bytes(int rows) -> std::size_t {
  return sizeof(float) * (static_cast<std::size_t>(MAXG) * D +             // q
                          static_cast<std::size_t>(MAXG) * decode_chunk +  // logits / weights
                          static_cast<std::size_t>(rows) * MAXG * D +      // row-group partials
                          2 * MAXG);                                       // max, sum
}

template <int TPR>
__device__ __forceinline__ auto group_sum(float x) -> float {
#pragma unroll
  for (int off = TPR / 2; off > 0; off /= 2) {
    x += __shfl_xor_sync(0xffffffffU, x, off);
  }
  return x;
}

__device__ __forceinline__ auto warp_max(float x) -> float {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffU, x, off));
  }
  return x;
}
__device__ __forceinline__ auto warp_sum(float x) -> float {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    x += __shfl_xor_sync(0xffffffffU, x, off);
  }
  return x;
}

// One chunk of one pair for query heads [g0, g0 + MAXG) of its group.
template <class T, int D, int MAXG>
__global__ void __launch_bounds__(decode_threads)
    decode_partial(store_view<T> s, batch_heads batch, const float* __restrict__ q,
                   std::int32_t group, float scale, float* __restrict__ partial_o,
                   float2* __restrict__ partial_ml, float* __restrict__ logits,
                   std::int32_t splits, std::int32_t token_stride) {
  using shape = row_shape<T, D>;
  extern __shared__ float smem[];
  float* q_s = smem;                            // [MAXG][D]
  float* w_s = q_s + MAXG * D;                  // [MAXG][decode_chunk]
  float* red = w_s + MAXG * decode_chunk;       // [rows][MAXG][D]
  float* m_s = red + shape::rows * MAXG * D;    // [MAXG]
  float* l_s = m_s + MAXG;                      // [MAXG]

  const std::int32_t pair = static_cast<std::int32_t>(blockIdx.y);
  const std::int32_t split = static_cast<std::int32_t>(blockIdx.x);
  const std::int32_t g0 = static_cast<std::int32_t>(blockIdx.z) * MAXG;
  const std::int32_t gn = min(MAXG, group - g0);
  const std::int32_t head = batch.head(pair);
  const std::int32_t n = s.sizes[head];
  const std::int32_t begin = split * decode_chunk;
  if (begin >= n) {
    return; // the merge reads only the chunks a head has
  }
  const std::int32_t count = min(decode_chunk, n - begin);
  const int tid = static_cast<int>(threadIdx.x);
  const int rg = tid / shape::tpr;
  const int lane = tid % shape::tpr;

  for (int i = tid; i < MAXG * D; i += decode_threads) {
    const int g = i / D;
    q_s[i] = g < gn ? q[(static_cast<std::size_t>(pair) * group + g0 + g) * D + i % D] : 0.0F;
  }
  __syncthreads();

  // Logits: each group of tpr threads takes a row; q stays in shared memory. Every thread runs
  // the same number of iterations (idle row groups on zeros): the shuffles in group_sum name
  // the whole warp, whose row groups would otherwise leave the loop at different times.
  float* lg = logits + (static_cast<std::size_t>(pair) * group + g0) * token_stride + begin;
  for (int r0 = 0; r0 < count; r0 += shape::rows) {
    const int r = r0 + rg;
    const bool live = r < count;
    float kf[shape::nv][shape::ve] = {};
    if (live) {
      const T* kp = s.key(head, begin + r);
#pragma unroll
      for (int v = 0; v < shape::nv; ++v) {
        load_vec(kp + (lane + v * shape::tpr) * shape::ve, kf[v]);
      }
    }
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      float dot = 0.0F;
#pragma unroll
      for (int v = 0; v < shape::nv; ++v) {
        const float* qv = q_s + g * D + (lane + v * shape::tpr) * shape::ve;
#pragma unroll
        for (int e = 0; e < shape::ve; ++e) {
          dot = fmaf(qv[e], kf[v][e], dot);
        }
      }
      dot = group_sum<shape::tpr>(dot) * scale;
      if (live && lane == 0 && g < gn) {
        w_s[g * decode_chunk + r] = dot;
        lg[static_cast<std::size_t>(g) * token_stride + r] = dot;
      }
    }
  }
  __syncthreads();

  // Chunk-local softmax numerators per query head: one warp per head.
  const int warp = tid / 32;
  const int wl = tid % 32;
  for (int g = warp; g < gn; g += decode_threads / 32) {
    float m = -INFINITY;
    for (int r = wl; r < count; r += 32) {
      m = fmaxf(m, w_s[g * decode_chunk + r]);
    }
    m = warp_max(m);
    float l = 0.0F;
    for (int r = wl; r < count; r += 32) {
      const float p = __expf(w_s[g * decode_chunk + r] - m);
      w_s[g * decode_chunk + r] = p;
      l += p;
    }
    l = warp_sum(l);
    if (wl == 0) {
      m_s[g] = m;
      l_s[g] = l;
    }
  }
  __syncthreads();

  // Weighted values: each row group accumulates its rows, then the groups are summed.
  float acc[MAXG][shape::nv][shape::ve] = {};
  for (int r = rg; r < count; r += shape::rows) {
    const T* vp = s.value(head, begin + r);
    float vf[shape::nv][shape::ve];
#pragma unroll
    for (int v = 0; v < shape::nv; ++v) {
      load_vec(vp + (lane + v * shape::tpr) * shape::ve, vf[v]);
    }
#pragma unroll
    for (int g = 0; g < MAXG; ++g) {
      const float w = g < gn ? w_s[g * decode_chunk + r] : 0.0F;
#pragma unroll
      for (int v = 0; v < shape::nv; ++v) {
#pragma unroll
        for (int e = 0; e < shape::ve; ++e) {
          acc[g][v][e] = fmaf(w, vf[v][e], acc[g][v][e]);
        }
      }
    }
  }
#pragma unroll
  for (int g = 0; g < MAXG; ++g) {
#pragma unroll
    for (int v = 0; v < shape::nv; ++v) {
#pragma unroll
      for (int e = 0; e < shape::ve; ++e) {
        red[(rg * MAXG + g) * D + (lane + v * shape::tpr) * shape::ve + e] = acc[g][v][e];
      }
    }
  }
  __syncthreads();
  const std::size_t base = (static_cast<std::size_t>(pair) * splits + split) * group + g0;
  for (int i = tid; i < gn * D; i += decode_threads) {
    const int g = i / D;
    const int d = i % D;
    float sum = 0.0F;
    for (int r = 0; r < shape::rows; ++r) {
      sum += red[(r * MAXG + g) * D + d];
    }
    partial_o[(base + g) * D + d] = sum;
  }
  if (tid < gn) {
    partial_ml[base + tid] = make_float2(m_s[tid], l_s[tid]);
  }
}

// Combines a pair's chunks: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
template <int D>
__global__ void __launch_bounds__(decode_threads)
    decode_merge(const std::int32_t* __restrict__ sizes, batch_heads batch, std::int32_t group,
                 const float* __restrict__ partial_o, const float2* __restrict__ partial_ml,
                 std::int32_t splits, float* __restrict__ out, float2* __restrict__ final_ml) {
  const std::int32_t pair = static_cast<std::int32_t>(blockIdx.x);
  const std::int32_t n = sizes[batch.head(pair)];
  const std::int32_t chunks = (n + decode_chunk - 1) / decode_chunk;
  for (int i = static_cast<int>(threadIdx.x); i < group * D; i += decode_threads) {
    const int g = i / D;
    const int d = i % D;
    float m = -INFINITY;
    for (std::int32_t c = 0; c < chunks; ++c) {
      m = fmaxf(m, partial_ml[(static_cast<std::size_t>(pair) * splits + c) * group + g].x);
    }
    float l = 0.0F;
    float o = 0.0F;
    for (std::int32_t c = 0; c < chunks; ++c) {
      const std::size_t at = (static_cast<std::size_t>(pair) * splits + c) * group + g;
      const float2 ml = partial_ml[at];
      const float f = __expf(ml.x - m);
      l += ml.y * f;
      o += partial_o[at * D + d] * f;
    }
    out[(static_cast<std::size_t>(pair) * group + g) * D + d] = chunks == 0 ? 0.0F : o / l;
    if (d == 0) {
      final_ml[static_cast<std::size_t>(pair) * group + g] = make_float2(m, l);
    }
  }
}

template <class T, int D, int MAXG>
void launch_decode(const store_view<T>& s, const batch_heads& batch, const float* q,
                   std::int32_t group, float scale, decode_workspace& ws, cudaStream_t stream) {
  using shape = row_shape<T, D>;
  constexpr std::size_t smem = decode_smem_bytes<D, MAXG>(shape::rows);
  auto kernel = decode_partial<T, D, MAXG>;
  if constexpr (smem > 48 * 1024) {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem)),
          "cudaFuncSetAttribute(decode_partial)");
  }
  const dim3 grid(static_cast<unsigned>(ws.splits), static_cast<unsigned>(batch.pairs()),
                  static_cast<unsigned>(div_up(group, MAXG)));
  kernel<<<grid, decode_threads, smem, stream>>>(s, batch, q, group, scale, ws.partial_o.data(),
                                                 ws.partial_ml.data(), ws.logits.data(),
                                                 ws.splits, ws.token_stride);
  check_launch("decode_partial");
}

template <class T, int D>
void dispatch_group(const store_view<T>& s, const batch_heads& batch, const float* q,
                    std::int32_t group, float scale, decode_workspace& ws, cudaStream_t stream) {
  if (group == 1) {
    launch_decode<T, D, 1>(s, batch, q, group, scale, ws, stream);
  } else if (group == 2) {
    launch_decode<T, D, 2>(s, batch, q, group, scale, ws, stream);
  } else if (group <= 4) {
    launch_decode<T, D, 4>(s, batch, q, group, scale, ws, stream);
  } else {
    launch_decode<T, D, 8>(s, batch, q, group, scale, ws, stream); // > 8: several z-blocks
  }
}

} // namespace detail

/// Decode attention for every pair of `batch`: out = softmax(q K^T * scale) V per query head over
/// the head's resident tokens (zeros for an empty head). Leaves each token's logits and each
/// head's (max, sum) in `ws` for the step kernel. `max_tokens` bounds every pair's size (the
/// caller knows it without a sync: the layer's length). Throws errc::invalid_argument for
/// head_dim outside {32, 64, 128, 256}, a bad batch or group; no host sync.
template <class T>
void decode_attention(const store_view<T>& s, const batch_heads& batch, const float* q,
                      float* out, std::int32_t group, float scale, std::int32_t max_tokens,
                      decode_workspace& ws, cudaStream_t stream) {
  expects(batch.n_seq_in_batch > 0 && batch.n_seq_in_batch <= max_batch, errc::invalid_argument,
          [&] {
            return fmt::format("decode batch of {} sequences outside [1, {}]",
                               batch.n_seq_in_batch, max_batch);
          });
  expects(group > 0, errc::invalid_argument, "decode group must be > 0");
  ws.reserve(batch.pairs(), group, s.head_dim, max_tokens);
  switch (s.head_dim) {
  case 32:
    detail::dispatch_group<T, 32>(s, batch, q, group, scale, ws, stream);
    break;
  case 64:
    detail::dispatch_group<T, 64>(s, batch, q, group, scale, ws, stream);
    break;
  case 128:
    detail::dispatch_group<T, 128>(s, batch, q, group, scale, ws, stream);
    break;
  case 256:
    detail::dispatch_group<T, 256>(s, batch, q, group, scale, ws, stream);
    break;
  default:
    raise(errc::invalid_argument,
          fmt::format("CUDA decode supports head_dim 32, 64, 128 or 256, not {}", s.head_dim));
  }
  auto merge = [&]<int D>() {
    detail::decode_merge<D><<<static_cast<unsigned>(batch.pairs()), detail::decode_threads, 0,
                              stream>>>(s.sizes, batch, group, ws.partial_o.data(),
                                        ws.partial_ml.data(), ws.splits, out,
                                        ws.final_ml.data());
    check_launch("decode_merge");
  };
  switch (s.head_dim) {
  case 32:
    merge.template operator()<32>();
    break;
  case 64:
    merge.template operator()<64>();
    break;
  case 128:
    merge.template operator()<128>();
    break;
  default:
    merge.template operator()<256>();
    break;
  }
}

} // namespace kvsieve::cuda
