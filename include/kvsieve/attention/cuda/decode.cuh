// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Batched decode attention over ragged paged heads: one launch serves every (sequence, KV head)
/// pair of a layer, each with its own length and page list (what FlashInfer-style kernels, which
/// assume one length per request, do not cover). Balanced split-KV: a plan computed on the device
/// cuts the layer's heads into chunks of whole tiles (decode_chunk tokens), as few tiles per
/// chunk as keeps the chunks within one wave of the GPU, so long heads are split and short ones
/// are not, whatever the skew; a block takes chunks for up to 8 query heads of a group and reads
/// each K and V row once for all of them, in a single pass with an online softmax (running max
/// and sum), 8 16-byte loads in flight per thread, each tile's page ids and row offsets staged in
/// shared memory once (no division by page_size in the loop over rows; any page_size > 0). A
/// pair of one chunk is finished by its block; the block that finishes a split pair's last chunk
/// merges its chunks (log-sum-exp rule) in the same launch. Arithmetic in float.
/// Each token's logits are kept (4 bytes per query head, against 2 * head_dim * sizeof(T) of K
/// and V) with each head's final (max, sum), so that the cache's step kernel turns them into
/// probabilities, exp(logit - max) / sum, for the frequent score without a second pass over K.
/// Scratch: a decode_workspace allocated once from bounds known at construction; a decode call
/// allocates nothing and never synchronises (it can be captured into a CUDA graph, and a replay
/// plans again from the lengths of that moment).
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
/// 8 * max_pairs * max_group, the plan 8 * max_pairs * splits + 4 * max_pairs * (1 + z-blocks),
/// and when a head can span several tiles the chunk partials (4 * head_dim + 8) * max_pairs *
/// max_group * splits.
struct decode_workspace {
  device_buffer<float> partial_o;   ///< [pairs][splits][group][D]: unnormalised chunk outputs
  device_buffer<float2> partial_ml; ///< [pairs][splits][group]: chunk max and sum
  device_buffer<float> logits;      ///< [pairs][group][token_stride]: token j at index j (slot)
  device_buffer<float2> final_ml;   ///< [pairs][group]: the head's max and sum over its tokens
  /// The last call's plan: [0] work items, [1] tiles (decode_chunk tokens) per chunk, then
  /// [pairs]: chunks of each pair (1: not split).
  device_buffer<std::int32_t> plan;
  device_buffer<int2> work;         ///< [items]: (pair, chunk) in pair order
  device_buffer<std::int32_t> done; ///< [pairs][z-blocks]: chunks finished; zero between calls
  std::int32_t max_pairs = 0;       ///< most (sequence, KV head) pairs of one call
  std::int32_t max_group = 0;       ///< most query heads per KV head
  std::int32_t max_head_dim = 0;    ///< largest head_dim
  std::int32_t max_tokens = 0;      ///< largest max_tokens of a call (resident tokens per head)
  std::int32_t splits = 0;          ///< chunks per pair: ceil(max_tokens / decode_chunk)
  std::int32_t token_stride = 0;    ///< splits * decode_chunk
  std::int32_t sm_count = 0;        ///< the device's multiprocessors (queried at construction)
  /// Chunks a call aims at (one wave): 0 = sm_count x the blocks of the kernel that fit on a
  /// multiprocessor (its occupancy). Set it to study the balance (benchmarks, tests); any value
  /// > 0 gives the same results up to float rounding.
  std::int32_t target_blocks = 0;

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
    const auto np = static_cast<std::size_t>(pairs);
    plan = device_buffer<std::int32_t>(detail::plan_pairs + np);
    work = device_buffer<int2>(np * static_cast<std::size_t>(splits));
    done = device_buffer<std::int32_t>(np * static_cast<std::size_t>(div_up(group, 8)));
    done.fill_zero(nullptr);
    int device = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute(multiprocessors)");
    check(cudaStreamSynchronize(nullptr), "decode_workspace"); // done is zero before any call
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

/// Launches decode_plan_kernel: the work items of the call, and the outputs of its empty heads
/// (alone for a call of no tokens).
inline void decode_plan(cudaStream_t stream, const std::int32_t* sizes, const batch_heads& batch,
                        const decode_kernel_args& args, std::int32_t head_dim) {
  decode_plan_kernel<<<1, plan_threads, 0, stream>>>(sizes, batch, args, head_dim);
  check_launch("decode_plan_kernel");
}

/// Plans the call on the device, then launches decode_partial_kernel with a block per item the
/// plan can make (one wave, or a chunk per pair when there are more pairs), times the blocks of
/// query heads (args.chunks > 0).
template <class T, int D, int MAXG>
void decode_partial(cudaStream_t stream, const store_view<T>& s, const batch_heads& batch,
                    decode_kernel_args args, const decode_workspace& ws) {
  constexpr std::size_t smem = decode_smem_bytes<T, D, MAXG>();
  auto kernel = decode_partial_kernel<T, D, MAXG>;
  if constexpr (smem > 48 * 1024) {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem)),
          "cudaFuncSetAttribute(decode_partial_kernel)");
  }
  // Blocks of this instance resident per multiprocessor: a property of the kernel, asked once.
  static const int resident = [&] {
    int n = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, decode_threads, smem),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor(decode_partial_kernel)");
    return std::max(n, 1);
  }();
  const auto zb = static_cast<std::int32_t>(div_up(args.group, MAXG));
  const std::int64_t wave =
      ws.target_blocks > 0 ? ws.target_blocks : std::int64_t{ws.sm_count} * resident;
  args.target = static_cast<std::int32_t>(std::max<std::int64_t>(1, wave / zb));
  decode_plan(stream, s.sizes, batch, args, D);
  // A block per item the plan can make: at most max(target, pairs) (more only when every
  // pair is one chunk), and at most `chunks` per pair.
  const std::int64_t most =
      std::min(std::max<std::int64_t>(args.target, batch.pairs()),
               std::int64_t{batch.pairs()} * args.chunks);
  const dim3 grid(static_cast<unsigned>(most), 1, static_cast<unsigned>(zb));
  kernel<<<grid, decode_threads, smem, stream>>>(s, batch, args);
  check_launch("decode_partial_kernel");
}

template <class T, int D>
void decode_partial_group(cudaStream_t stream, const store_view<T>& s, const batch_heads& batch,
                          const decode_kernel_args& args, const decode_workspace& ws) {
  if (args.group == 1) {
    decode_partial<T, D, 1>(stream, s, batch, args, ws);
  } else if (args.group == 2) {
    decode_partial<T, D, 2>(stream, s, batch, args, ws);
  } else if (args.group <= 4) {
    decode_partial<T, D, 4>(stream, s, batch, args, ws);
  } else {
    decode_partial<T, D, 8>(stream, s, batch, args, ws); // > 8: several z-blocks
  }
}

} // namespace detail

/// Decode attention for every pair of `batch`: out = softmax(q K^T * scale) V per query head over
/// the head's resident tokens (zeros for an empty head). Leaves each token's logit in ws.logits
/// ([pair][group][ws.token_stride], slot j at index j) and each query head's final (max, sum)
/// over its tokens in ws.final_ml ([pair][group]; (-inf, 0) for an empty head), so that
/// exp(logit - max) / sum is the token's probability. `max_tokens` bounds every pair's resident
/// tokens (the caller knows it without a sync: the layer's length); a head beyond it is read
/// only up to ceil(max_tokens / decode_chunk) tiles (out of contract). Two launches on
/// `stream` (the plan, then the attention); no allocation, no host sync (graph-capturable).
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
                                 .work = ws.work.data(),
                                 .plan = ws.plan.data(),
                                 .done = ws.done.data(),
                                 .group = group,
                                 .scale = scale,
                                 .splits = ws.splits,
                                 .token_stride = ws.token_stride,
                                 .chunks = static_cast<std::int32_t>(
                                     div_up(max_tokens, decode_chunk)),
                                 .page_shift = detail::page_shift(s.page_size),
                                 .target = 1};
  auto run = [&]<int D>() {
    if (args.chunks > 0) {
      detail::decode_partial_group<T, D>(stream, s, batch, args, ws);
    } else {
      detail::decode_plan(stream, s.sizes, batch, args, D); // writes the empty outputs
    }
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
