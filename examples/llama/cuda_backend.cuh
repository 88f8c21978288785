// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::cuda_backend: the decoder's forward pass (model.hpp) on the GPU in fp32, the device
/// model of forward_backend (backend.hpp) and backend_for<kvsieve::cuda_space>, so that
/// llama::model<Cache> over a device cache (kvsieve::cuda::adaptive_cache) runs here. Weights are
/// copied to the device once, at construction; matmuls are cuBLAS SGEMMs, the element-wise steps
/// small kernels, all on one stream; only the logits come back (to_host synchronises the stream).
/// Needs nvcc and cuBLAS; head_dim in {32, 64, 128, 256} (the CUDA attention kernels').

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/kvsieve.hpp>

#include <llama/backend.hpp>
#include <llama/config.hpp>
#include <llama/model.hpp>
#include <llama/weights.hpp>

namespace llama {

namespace detail {

inline void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    kvsieve::raise(kvsieve::errc::device, fmt::format("{}: {}", what, cublasGetStatusString(s)));
  }
}

// One block per token: x [n, dim] = table[ids[t]].
__global__ void embed_kernel(const float* table, const std::int32_t* ids, std::size_t dim,
                             float* x) {
  const std::size_t t = blockIdx.x;
  const float* row = table + static_cast<std::size_t>(ids[t]) * dim;
  for (std::size_t i = threadIdx.x; i < dim; i += blockDim.x) {
    x[t * dim + i] = row[i];
  }
}

// One block per row; the sum of squares in float, as HF computes it.
__global__ void rmsnorm_kernel(const float* x, std::size_t dim, const float* weight, float eps,
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
__global__ void rope_kernel(float* x, std::size_t n, std::size_t heads, std::size_t d,
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

__global__ void add_kernel(float* x, const float* y, std::size_t n) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    x[i] += y[i];
  }
}

__global__ void silu_mul_kernel(float* gate, const float* up, std::size_t n) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    const float g = gate[i];
    gate[i] = g / (1.0F + expf(-g)) * up[i];
  }
}

} // namespace detail

/// A weight matrix on the device: row-major [rows, cols].
struct device_matrix {
  kvsieve::cuda::device_buffer<float> data;
  std::size_t rows = 0;
  std::size_t cols = 0;
};

/// One decoder layer on the device, with model_weights' member names; the norms' vectors point
/// into buffers the backend owns.
struct device_layer_weights {
  const float* attn_norm = nullptr; // [hidden]
  device_matrix wq, wk, wv, wo;
  const float* mlp_norm = nullptr;  // [hidden]
  device_matrix w_gate, w_up, w_down;
};

/// model_weights on the device (the same member names).
struct device_weights {
  device_matrix embed;                      // [vocab, hidden]
  std::vector<device_layer_weights> layers; // n_layer
  const float* norm = nullptr;              // [hidden]
  device_matrix lm_head;                    // [vocab, hidden]
};

/// A buffer of floats on the device that grows on demand (contents not kept).
struct device_floats {
  kvsieve::cuda::device_buffer<float> storage;
  [[nodiscard]] auto data() const -> float* { return storage.data(); }
};

/// The forward pass's operations on the GPU (forward_backend, backend.hpp), in stream order on
/// `stream` (nullptr: the legacy default stream). Not copyable (it owns a cuBLAS handle).
class cuda_backend {
public:
  using memory_space = kvsieve::cuda_space;
  using buffer = device_floats;
  using matrix_type = device_matrix;
  using weights_type = device_weights;

  cuda_backend(const config& cfg, const model_weights& w, cudaStream_t stream = nullptr)
      : head_dim_(static_cast<std::size_t>(cfg.head_dim)), theta_(cfg.rope_theta),
        stream_(stream) {
    kvsieve::expects(cfg.head_dim == 32 || cfg.head_dim == 64 || cfg.head_dim == 128 ||
                         cfg.head_dim == 256,
                     kvsieve::errc::invalid_argument, [&] {
                       return fmt::format("the CUDA decoder needs head_dim 32, 64, 128 or 256, "
                                          "not {}",
                                          cfg.head_dim);
                     });
    detail::check_cublas(cublasCreate(&blas_), "cublasCreate");
    detail::check_cublas(cublasSetStream(blas_, stream_), "cublasSetStream");
    // Exact fp32 SGEMM (no TF32): the golden test compares with transformers to 1e-3.
    detail::check_cublas(cublasSetMathMode(blas_, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
    const auto dim = static_cast<std::size_t>(cfg.hidden_size);
    w_.embed = upload(w.embed);
    w_.norm = upload_vector(w.norm, dim);
    w_.lm_head = upload(w.lm_head);
    for (const auto& lw : w.layers) {
      device_layer_weights l;
      l.attn_norm = upload_vector(lw.attn_norm, dim);
      l.mlp_norm = upload_vector(lw.mlp_norm, dim);
      l.wq = upload(lw.wq);
      l.wk = upload(lw.wk);
      l.wv = upload(lw.wv);
      l.wo = upload(lw.wo);
      l.w_gate = upload(lw.w_gate);
      l.w_up = upload(lw.w_up);
      l.w_down = upload(lw.w_down);
      w_.layers.push_back(std::move(l));
    }
  }
  cuda_backend(const cuda_backend&) = delete;
  auto operator=(const cuda_backend&) -> cuda_backend& = delete;
  ~cuda_backend() { (void)cublasDestroy(blas_); }

  [[nodiscard]] auto weights() const -> const device_weights& { return w_; }
  /// No host thread computes: the products run on the GPU.
  [[nodiscard]] static auto threads() -> std::size_t { return 1; }

  static void resize(buffer& b, std::size_t n) { b.storage.reserve_discard(n); }

  /// x [n, hidden] = the embedding rows of tokens (ids checked by the model; uploaded here).
  void embed(std::span<const std::int32_t> tokens, float* x) {
    ids_.reserve_discard(tokens.size());
    ids_.upload(tokens);
    detail::embed_kernel<<<static_cast<unsigned>(tokens.size()), 256, 0, stream_>>>(
        w_.embed.data.data(), ids_.data(), w_.embed.cols, x);
    kvsieve::cuda::check_launch("embed");
  }

  void rmsnorm(const float* x, std::size_t rows, std::size_t dim, const float* weight, float eps,
               float* out) const {
    detail::rmsnorm_kernel<<<static_cast<unsigned>(rows), 256, 0, stream_>>>(x, dim, weight, eps,
                                                                             out);
    kvsieve::cuda::check_launch("rmsnorm");
  }

  // y [rows, w.rows] = x [rows, w.cols] w^T, row-major: in cuBLAS's column-major terms
  // y^T = w x^T, with w's row-major storage read as its transpose. One SGEMM per product.
  void matmul(const float* x, std::size_t rows,
              std::initializer_list<llama::product<device_matrix>> ps) const {
    const float one = 1.0F;
    const float zero = 0.0F;
    for (const auto& p : ps) {
      const auto& w = *p.w;
      detail::check_cublas(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows),
                                       static_cast<int>(rows), static_cast<int>(w.cols), &one,
                                       w.data.data(), static_cast<int>(w.cols), x,
                                       static_cast<int>(w.cols), &zero, p.y,
                                       static_cast<int>(w.rows)),
                           "cublasSgemm");
    }
  }

  void rope(float* x, std::size_t n, std::size_t heads, std::size_t first_pos) const {
    detail::rope_kernel<<<blocks(n * heads * head_dim_ / 2), 256, 0, stream_>>>(
        x, n, heads, head_dim_, static_cast<std::int32_t>(first_pos), theta_);
    kvsieve::cuda::check_launch("rope");
  }

  void silu_mul(float* gate, const float* up, std::size_t n) const {
    detail::silu_mul_kernel<<<blocks(n), 256, 0, stream_>>>(gate, up, n);
    kvsieve::cuda::check_launch("silu_mul");
  }

  void add(float* x, const float* y, std::size_t n) const {
    detail::add_kernel<<<blocks(n), 256, 0, stream_>>>(x, y, n);
    kvsieve::cuda::check_launch("add");
  }

  /// The n floats at x, after everything queued on the stream.
  auto to_host(const float* x, std::size_t n) const -> std::vector<float> {
    std::vector<float> host(n);
    kvsieve::cuda::check(cudaMemcpyAsync(host.data(), x, n * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_),
                         "logits download");
    kvsieve::cuda::check(cudaStreamSynchronize(stream_), "forward pass");
    return host;
  }

private:
  static auto blocks(std::size_t n) -> unsigned { return static_cast<unsigned>((n + 255) / 256); }

  static auto upload(const matrix& m) -> device_matrix {
    device_matrix d{kvsieve::cuda::device_buffer<float>(m.rows * m.cols), m.rows, m.cols};
    d.data.upload({m.data, m.rows * m.cols});
    return d;
  }
  auto upload_vector(const float* p, std::size_t n) -> const float* {
    vectors_.emplace_back(n);
    vectors_.back().upload({p, n});
    return vectors_.back().data();
  }

  std::size_t head_dim_;
  float theta_;
  cudaStream_t stream_;
  cublasHandle_t blas_ = nullptr;
  std::vector<kvsieve::cuda::device_buffer<float>> vectors_; // the norms' weights
  device_weights w_;
  kvsieve::cuda::device_buffer<std::int32_t> ids_;
};

static_assert(forward_backend<cuda_backend>);

template <>
struct backend_for<kvsieve::cuda_space> {
  using type = cuda_backend;
};

} // namespace llama
