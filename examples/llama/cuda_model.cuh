// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The LLaMA forward pass of model.hpp on the GPU: the same equations in fp32, weights copied to
/// the device once, matmuls by cuBLAS (SGEMM), the element-wise steps as small kernels, and the
/// attention through the device kvsieve::adaptive_cache (cuda_views). Only the logits come back.
/// Needs nvcc and cuBLAS; head_dim in {32, 64, 128, 256} (the CUDA attention kernels').

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/kvsieve.hpp>

#include <llama/config.hpp>
#include <llama/weights.hpp>

namespace llama::gpu {

namespace kc = kvsieve::cuda;

inline void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    kvsieve::raise(kvsieve::errc::device,
                   fmt::format("{}: {}", what, cublasGetStatusString(s)));
  }
}

namespace kernels {

__global__ void embed(const float* table, const std::int32_t* ids, std::size_t dim, float* x) {
  const std::size_t t = blockIdx.x;
  const float* row = table + static_cast<std::size_t>(ids[t]) * dim;
  for (std::size_t i = threadIdx.x; i < dim; i += blockDim.x) {
    x[t * dim + i] = row[i];
  }
}

// One block per row; the sum of squares in float, as HF computes it.
__global__ void rmsnorm(const float* x, std::size_t dim, const float* weight, float eps,
                        float* out) {
  __shared__ float partial[32];
  const std::size_t r = blockIdx.x;
  const float* xr = x + r * dim;
  float ss = 0.0F;
  for (std::size_t i = threadIdx.x; i < dim; i += blockDim.x) {
    ss += xr[i] * xr[i];
  }
  for (int off = 16; off > 0; off /= 2) {
    ss += __shfl_xor_sync(0xffffffffU, ss, off);
  }
  if (threadIdx.x % 32 == 0) {
    partial[threadIdx.x / 32] = ss;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.0F;
    for (unsigned w = 0; w < blockDim.x / 32; ++w) {
      total += partial[w];
    }
    partial[0] = 1.0F / sqrtf(total / static_cast<float>(dim) + eps);
  }
  __syncthreads();
  const float inv = partial[0];
  for (std::size_t i = threadIdx.x; i < dim; i += blockDim.x) {
    out[r * dim + i] = weight[i] * (xr[i] * inv);
  }
}

// Rotate-half RoPE for x [n, heads, d] at positions first_pos + t: one thread per (t, head, i).
__global__ void rope(float* x, std::size_t n, std::size_t heads, std::size_t d,
                     std::int32_t first_pos, float theta) {
  const std::size_t half = d / 2;
  const std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * heads * half) {
    return;
  }
  const std::size_t i = idx % half;
  const std::size_t h = (idx / half) % heads;
  const std::size_t t = idx / (half * heads);
  const float inv_freq = 1.0F / powf(theta, static_cast<float>(2 * i) / static_cast<float>(d));
  const float angle = static_cast<float>(first_pos + static_cast<std::int32_t>(t)) * inv_freq;
  const float c = cosf(angle);
  const float s = sinf(angle);
  float* v = x + (t * heads + h) * d;
  const float a = v[i];
  const float b = v[i + half];
  v[i] = a * c - b * s;
  v[i + half] = b * c + a * s;
}

__global__ void add(float* x, const float* y, std::size_t n) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    x[i] += y[i];
  }
}

__global__ void silu_mul(float* gate, const float* up, std::size_t n) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    const float g = gate[i];
    gate[i] = g / (1.0F + expf(-g)) * up[i];
  }
}

} // namespace kernels

/// A weight matrix on the device: row-major [rows, cols].
struct device_matrix {
  kc::device_buffer<float> data;
  std::size_t rows = 0;
  std::size_t cols = 0;
};

/// The decoder over a kvsieve::cuda::adaptive_cache (T = float storage for exact comparisons,
/// bfloat16 for memory). Weights are copied at construction; the host weights may go.
template <class Cache>
class model {
public:
  model(const config& cfg, const model_weights& w, cudaStream_t stream = nullptr)
      : cfg_(cfg), stream_(stream) {
    kvsieve::expects(cfg.head_dim == 32 || cfg.head_dim == 64 || cfg.head_dim == 128 ||
                         cfg.head_dim == 256,
                     kvsieve::errc::invalid_argument, [&] {
                       return fmt::format("the CUDA decoder needs head_dim 32, 64, 128 or 256, "
                                          "not {}",
                                          cfg.head_dim);
                     });
    check_cublas(cublasCreate(&blas_), "cublasCreate");
    check_cublas(cublasSetStream(blas_, stream_), "cublasSetStream");
    // Exact fp32 SGEMM (no TF32): the golden test compares with transformers to 1e-3.
    check_cublas(cublasSetMathMode(blas_, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
    const auto dim = static_cast<std::size_t>(cfg.hidden_size);
    embed_ = upload(w.embed);
    norm_ = upload_vector(w.norm, dim);
    lm_head_ = upload(w.lm_head);
    for (const auto& lw : w.layers) {
      layer l;
      l.attn_norm = upload_vector(lw.attn_norm, dim);
      l.mlp_norm = upload_vector(lw.mlp_norm, dim);
      l.wq = upload(lw.wq);
      l.wk = upload(lw.wk);
      l.wv = upload(lw.wv);
      l.wo = upload(lw.wo);
      l.w_gate = upload(lw.w_gate);
      l.w_up = upload(lw.w_up);
      l.w_down = upload(lw.w_down);
      layers_.push_back(std::move(l));
    }
  }
  model(const model&) = delete;
  auto operator=(const model&) -> model& = delete;
  ~model() { (void)cublasDestroy(blas_); }

  /// As llama::model::prefill: logits of every position when all_logits, else of the last.
  auto prefill(Cache& cache, std::int32_t seq, std::span<const std::int32_t> tokens,
               std::span<const kvsieve::token_class> classes, bool all_logits = false)
      -> std::vector<float> {
    kvsieve::expects(!tokens.empty(), kvsieve::errc::invalid_argument, "empty prompt");
    kvsieve::expects(tokens.size() <= static_cast<std::size_t>(cfg_.max_position_embeddings),
                     kvsieve::errc::invalid_argument, "prompt exceeds max_position_embeddings");
    const std::size_t n = tokens.size();
    const auto nh = static_cast<std::size_t>(cfg_.n_head);
    const auto nkv = static_cast<std::size_t>(cfg_.n_head_kv);
    const auto hd = static_cast<std::size_t>(cfg_.head_dim);
    forward(tokens, 0, [&](std::int32_t layer, float* q, float* k, float* v, float* out) {
      cache.prefill(seq, layer, {q, {n, nh, hd}}, {k, {n, nkv, hd}}, {v, {n, nkv, hd}}, classes,
                    {out, {n, nh, hd}});
    });
    return logits(all_logits ? 0 : n - 1, n);
  }

  /// As llama::model::decode.
  auto decode(Cache& cache, std::int32_t seq, std::int32_t token, kvsieve::token_class cls)
      -> std::vector<float> {
    const std::int32_t pos = cache.length(seq, 0);
    kvsieve::expects(pos < cfg_.max_position_embeddings, kvsieve::errc::invalid_argument,
                     "the context is full (max_position_embeddings)");
    const std::int32_t one[1] = {token};
    const auto nh = static_cast<std::size_t>(cfg_.n_head);
    const auto nkv = static_cast<std::size_t>(cfg_.n_head_kv);
    const auto hd = static_cast<std::size_t>(cfg_.head_dim);
    forward(one, pos, [&](std::int32_t layer, float* q, float* k, float* v, float* out) {
      cache.decode(seq, layer, {q, {nh, hd}}, {k, {nkv, hd}}, {v, {nkv, hd}}, cls,
                   {out, {nh, hd}});
    });
    return logits(0, 1);
  }

private:
  struct layer {
    kc::device_buffer<float> attn_norm, mlp_norm;
    device_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
  };

  static auto upload(const matrix& m) -> device_matrix {
    device_matrix d{kc::device_buffer<float>(m.rows * m.cols), m.rows, m.cols};
    d.data.upload({m.data, m.rows * m.cols});
    return d;
  }
  static auto upload_vector(const float* p, std::size_t n) -> kc::device_buffer<float> {
    kc::device_buffer<float> d(n);
    d.upload({p, n});
    return d;
  }

  // y [rows, w.rows] = x [rows, w.cols] w^T, row-major: in cuBLAS's column-major terms
  // y^T = w x^T, with w's row-major storage read as its transpose.
  void matmul(const float* x, std::size_t rows, const device_matrix& w, float* y) {
    const float one = 1.0F;
    const float zero = 0.0F;
    check_cublas(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows),
                             static_cast<int>(rows), static_cast<int>(w.cols), &one,
                             w.data.data(), static_cast<int>(w.cols), x,
                             static_cast<int>(w.cols), &zero, y, static_cast<int>(w.rows)),
                 "cublasSgemm");
  }

  static auto blocks(std::size_t n) -> unsigned {
    return static_cast<unsigned>((n + 255) / 256);
  }

  template <class Attend>
  void forward(std::span<const std::int32_t> tokens, std::int32_t first_pos, Attend&& attend) {
    const std::size_t n = tokens.size();
    const auto dim = static_cast<std::size_t>(cfg_.hidden_size);
    const auto inter = static_cast<std::size_t>(cfg_.intermediate_size);
    const auto nh = static_cast<std::size_t>(cfg_.n_head);
    const auto nkv = static_cast<std::size_t>(cfg_.n_head_kv);
    const auto hd = static_cast<std::size_t>(cfg_.head_dim);
    for (const auto id : tokens) {
      kvsieve::expects(id >= 0 && id < cfg_.vocab_size, kvsieve::errc::invalid_argument,
                       [&] { return fmt::format("token id {} outside the vocabulary", id); });
    }
    ids_.reserve_discard(n);
    ids_.upload(tokens);
    x_.reserve_discard(n * dim);
    h_.reserve_discard(n * dim);
    q_.reserve_discard(n * nh * hd);
    k_.reserve_discard(n * nkv * hd);
    v_.reserve_discard(n * nkv * hd);
    att_.reserve_discard(n * nh * hd);
    gate_.reserve_discard(n * inter);
    up_.reserve_discard(n * inter);
    kernels::embed<<<static_cast<unsigned>(n), 256, 0, stream_>>>(embed_.data.data(), ids_.data(),
                                                                  dim, x_.data());
    kc::check_launch("embed");
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      auto& lw = layers_[l];
      kernels::rmsnorm<<<static_cast<unsigned>(n), 256, 0, stream_>>>(
          x_.data(), dim, lw.attn_norm.data(), cfg_.rms_norm_eps, h_.data());
      matmul(h_.data(), n, lw.wq, q_.data());
      matmul(h_.data(), n, lw.wk, k_.data());
      matmul(h_.data(), n, lw.wv, v_.data());
      kernels::rope<<<blocks(n * nh * hd / 2), 256, 0, stream_>>>(q_.data(), n, nh, hd, first_pos,
                                                                  cfg_.rope_theta);
      kernels::rope<<<blocks(n * nkv * hd / 2), 256, 0, stream_>>>(k_.data(), n, nkv, hd,
                                                                   first_pos, cfg_.rope_theta);
      kc::check_launch("rmsnorm/rope");
      attend(static_cast<std::int32_t>(l), q_.data(), k_.data(), v_.data(), att_.data());
      matmul(att_.data(), n, lw.wo, h_.data());
      kernels::add<<<blocks(n * dim), 256, 0, stream_>>>(x_.data(), h_.data(), n * dim);
      kernels::rmsnorm<<<static_cast<unsigned>(n), 256, 0, stream_>>>(
          x_.data(), dim, lw.mlp_norm.data(), cfg_.rms_norm_eps, h_.data());
      matmul(h_.data(), n, lw.w_gate, gate_.data());
      matmul(h_.data(), n, lw.w_up, up_.data());
      kernels::silu_mul<<<blocks(n * inter), 256, 0, stream_>>>(gate_.data(), up_.data(),
                                                                n * inter);
      matmul(gate_.data(), n, lw.w_down, h_.data());
      kernels::add<<<blocks(n * dim), 256, 0, stream_>>>(x_.data(), h_.data(), n * dim);
      kc::check_launch("mlp");
    }
  }

  auto logits(std::size_t first, std::size_t n) -> std::vector<float> {
    const auto dim = static_cast<std::size_t>(cfg_.hidden_size);
    const std::size_t rows = n - first;
    kernels::rmsnorm<<<static_cast<unsigned>(rows), 256, 0, stream_>>>(
        x_.data() + first * dim, dim, norm_.data(), cfg_.rms_norm_eps, h_.data());
    kc::check_launch("final rmsnorm");
    out_.reserve_discard(rows * lm_head_.rows);
    matmul(h_.data(), rows, lm_head_, out_.data());
    std::vector<float> host(rows * lm_head_.rows);
    kc::check(cudaMemcpyAsync(host.data(), out_.data(), host.size() * sizeof(float),
                              cudaMemcpyDeviceToHost, stream_),
              "logits download");
    kc::check(cudaStreamSynchronize(stream_), "forward pass");
    return host;
  }

  const config& cfg_;
  cudaStream_t stream_;
  cublasHandle_t blas_ = nullptr;
  device_matrix embed_;
  kc::device_buffer<float> norm_;
  device_matrix lm_head_;
  std::vector<layer> layers_;
  kc::device_buffer<std::int32_t> ids_;
  kc::device_buffer<float> x_, h_, q_, k_, v_, att_, gate_, up_, out_;
};

} // namespace llama::gpu
