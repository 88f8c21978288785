// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Batched decode attention over ragged paged heads: one launch serves every (sequence, KV head)
/// pair of a layer, each with its own length and page list (what FlashInfer-style kernels, which
/// assume one length per request, do not cover). Split-KV: a block takes one chunk of
/// decode_chunk tokens of one pair for up to 8 query heads of its group and reads each K and V
/// row once for all of them, in a single pass with an online softmax (running max and sum), 8
/// 16-byte loads in flight per thread, the chunk's page ids and row offsets staged in shared
/// memory once (no division by page_size in the loop over rows; any page_size > 0). A head of
/// at most one chunk is finished by that block; a merge kernel combines the chunks of the heads
/// that were split with the log-sum-exp rule. Arithmetic in float.
/// Each token's logits are kept (4 bytes per query head, against 2 * head_dim * sizeof(T) of K
/// and V) with each head's final (max, sum), so that the cache's step kernel turns them into
/// probabilities, exp(logit - max) / sum, for the frequent score without a second pass over K.
/// Scratch: a decode_workspace allocated once from bounds known at construction; a decode call
/// allocates nothing and never synchronises (it can be captured into a CUDA graph).
/// Input layout: q, out [B, n_head_kv * group, head_dim] float; pair p = b * n_head_kv + h.

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/attention/cuda/detail/decode_kernel.cuh>
#include <kvsieve/core/cuda/numeric.cuh>
#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/core/error.hpp>
#include <kvsieve/store/cuda/paged_store.cuh>

namespace kvsieve::cuda {

/// Scratch of decode_attention, allocated once by the constructor from upper bounds of every
/// later call; a default-constructed workspace holds nothing and every call with it throws.
/// Device memory: logits 4 * max_pairs * max_group * token_stride bytes, final_ml
/// 8 * max_pairs * max_group, and when a head can span several chunks the chunk partials
/// (4 * head_dim + 8) * max_pairs * max_group * splits.
struct decode_workspace {
  device_buffer<float> partial_o;   ///< [pairs][splits][group][D]: unnormalised chunk outputs
  device_buffer<float2> partial_ml; ///< [pairs][splits][group]: chunk max and sum
  device_buffer<float> logits;      ///< [pairs][group][token_stride]: token j at index j (slot)
  device_buffer<float2> final_ml;   ///< [pairs][group]: the head's max and sum over its tokens
  std::int32_t max_pairs = 0;       ///< most (sequence, KV head) pairs of one call
  std::int32_t max_group = 0;       ///< most query heads per KV head
  std::int32_t max_head_dim = 0;    ///< largest head_dim
  std::int32_t max_tokens = 0;      ///< largest max_tokens of a call (resident tokens per head)
  std::int32_t splits = 0;          ///< chunks per pair: ceil(max_tokens / decode_chunk)
  std::int32_t token_stride = 0;    ///< splits * decode_chunk

  decode_workspace() = default;

  /// Allocates for calls of at most `pairs` pairs (at most max_batch * n_head_kv), `group`
  /// query heads per KV head, `head_dim`, and heads of at most `tokens` resident tokens. Throws
  /// errc::invalid_argument for a bound <= 0 (tokens may be 0: only empty heads), errc::
  /// out_of_memory (cudaMalloc) for a workspace the device cannot hold.
  decode_workspace(std::int32_t pairs, std::int32_t group, std::int32_t head_dim,
                   std::int32_t tokens)
      : max_pairs(pairs), max_group(group), max_head_dim(head_dim), max_tokens(tokens) {
    expects(pairs > 0 && group > 0 && head_dim > 0 && tokens >= 0, errc::invalid_argument, [&] {
      return fmt::format("decode_workspace bounds must be positive: {} pairs, group {}, "
                         "head_dim {}, {} tokens",
                         pairs, group, head_dim, tokens);
    });
    splits = static_cast<std::int32_t>(div_up(std::max(tokens, 1), decode_chunk));
    token_stride = splits * decode_chunk;
    const auto pg = static_cast<std::size_t>(pairs) * static_cast<std::size_t>(group);
    if (splits > 1) { // one chunk per head: finished in place, no partials
      const auto chunks = pg * static_cast<std::size_t>(splits);
      partial_o = device_buffer<float>(chunks * static_cast<std::size_t>(head_dim));
      partial_ml = device_buffer<float2>(chunks);
    }
    logits = device_buffer<float>(pg * static_cast<std::size_t>(token_stride));
    final_ml = device_buffer<float2>(pg);
  }

  /// Whether a call of these sizes stays within the workspace.
  [[nodiscard]] auto fits(std::int32_t pairs, std::int32_t group, std::int32_t head_dim,
                          std::int32_t tokens) const noexcept -> bool {
    return pairs <= max_pairs && group <= max_group && head_dim <= max_head_dim &&
           tokens <= max_tokens;
  }
};

namespace detail {

inline auto page_shift(std::int32_t page_size) -> std::int32_t {
  if ((page_size & (page_size - 1)) != 0) {
    return -1;
  }
  std::int32_t shift = 0;
  while ((std::int32_t{1} << shift) < page_size) {
    ++shift;
  }
  return shift;
}

/// Launches decode_partial_kernel for `chunks` chunks of every pair (chunks > 0).
template <class T, int D, int MAXG>
void decode_partial(cudaStream_t stream, const store_view<T>& s, const batch_heads& batch,
                    const decode_kernel_args& args) {
  constexpr std::size_t smem = decode_smem_bytes<T, D, MAXG>();
  auto kernel = decode_partial_kernel<T, D, MAXG>;
  if constexpr (smem > 48 * 1024) {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem)),
          "cudaFuncSetAttribute(decode_partial_kernel)");
  }
  const dim3 grid(static_cast<unsigned>(args.chunks), static_cast<unsigned>(batch.pairs()),
                  static_cast<unsigned>(div_up(args.group, MAXG)));
  kernel<<<grid, decode_threads, smem, stream>>>(s, batch, args);
  check_launch("decode_partial_kernel");
}

template <class T, int D>
void decode_partial_group(cudaStream_t stream, const store_view<T>& s, const batch_heads& batch,
                          const decode_kernel_args& args) {
  if (args.group == 1) {
    decode_partial<T, D, 1>(stream, s, batch, args);
  } else if (args.group == 2) {
    decode_partial<T, D, 2>(stream, s, batch, args);
  } else if (args.group <= 4) {
    decode_partial<T, D, 4>(stream, s, batch, args);
  } else {
    decode_partial<T, D, 8>(stream, s, batch, args); // > 8: several z-blocks
  }
}

/// Launches decode_merge_kernel over every pair (each returns at once unless split or empty).
template <int D>
void decode_merge(cudaStream_t stream, const std::int32_t* sizes, const batch_heads& batch,
                  const decode_kernel_args& args) {
  decode_merge_kernel<D><<<static_cast<unsigned>(batch.pairs()), decode_threads, 0, stream>>>(
      sizes, batch, args.group, args.partial_o, args.partial_ml, args.splits, args.chunks,
      args.out, args.final_ml);
  check_launch("decode_merge_kernel");
}

} // namespace detail

/// Decode attention for every pair of `batch`: out = softmax(q K^T * scale) V per query head over
/// the head's resident tokens (zeros for an empty head). Leaves each token's logit in ws.logits
/// ([pair][group][ws.token_stride], slot j at index j) and each query head's final (max, sum)
/// over its tokens in ws.final_ml ([pair][group]; (-inf, 0) for an empty head), so that
/// exp(logit - max) / sum is the token's probability. `max_tokens` bounds every pair's resident
/// tokens (the caller knows it without a sync: the layer's length); a head beyond it is read
/// only up to ceil(max_tokens / decode_chunk) chunks (out of contract). Two launches on
/// `stream`; no allocation, no host sync (graph-capturable).
/// Throws errc::invalid_argument for head_dim outside {32, 64, 128, 256}, a bad batch or group,
/// max_tokens < 0, or a call beyond the workspace's bounds (pairs, group, head_dim, max_tokens).
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
  expects(max_tokens >= 0, errc::invalid_argument, "decode max_tokens must be >= 0");
  expects(s.head_dim == 32 || s.head_dim == 64 || s.head_dim == 128 || s.head_dim == 256,
          errc::invalid_argument, [&] {
            return fmt::format("CUDA decode supports head_dim 32, 64, 128 or 256, not {}",
                               s.head_dim);
          });
  expects(ws.fits(batch.pairs(), group, s.head_dim, max_tokens), errc::invalid_argument, [&] {
    return fmt::format("decode_attention: the call ({} pairs, group {}, head_dim {}, {} tokens) "
                       "exceeds its decode_workspace (at most {} pairs, group {}, head_dim {}, "
                       "{} tokens); construct the workspace with bounds of the largest call "
                       "(decode never allocates)",
                       batch.pairs(), group, s.head_dim, max_tokens, ws.max_pairs, ws.max_group,
                       ws.max_head_dim, ws.max_tokens);
  });
  const detail::decode_kernel_args args{.q = q,
                                 .out = out,
                                 .partial_o = ws.partial_o.data(),
                                 .partial_ml = ws.partial_ml.data(),
                                 .logits = ws.logits.data(),
                                 .final_ml = ws.final_ml.data(),
                                 .group = group,
                                 .scale = scale,
                                 .splits = ws.splits,
                                 .token_stride = ws.token_stride,
                                 .chunks = static_cast<std::int32_t>(
                                     div_up(max_tokens, decode_chunk)),
                                 .page_shift = detail::page_shift(s.page_size)};
  auto run = [&]<int D>() {
    if (args.chunks > 0) {
      detail::decode_partial_group<T, D>(stream, s, batch, args);
    }
    detail::decode_merge<D>(stream, s.sizes, batch, args);
  };
  switch (s.head_dim) {
  case 32:
    run.template operator()<32>();
    break;
  case 64:
    run.template operator()<64>();
    break;
  case 128:
    run.template operator()<128>();
    break;
  default:
    run.template operator()<256>();
    break;
  }
}

} // namespace kvsieve::cuda
