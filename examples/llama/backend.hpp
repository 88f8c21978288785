// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// What llama::model (model.hpp) asks of the machine that runs its forward pass: buffers of floats
/// in one memory space and the handful of operations LLaMA's equations are made of. The forward
/// is written once against this contract; cpu_backend.hpp (OpenBLAS, Highway, a thread pool) and
/// cuda_backend.cuh (cuBLAS and small kernels) are its two models, and backend_for<Space> picks
/// one from the cache's memory space, so llama::model<Cache> runs where its cache lives.
///
/// A backend B models forward_backend when:
///  1. `B::memory_space` is a kvsieve::memory_space: every float* below points into it, and the
///     cache's tensor_views are built over those pointers unchanged;
///  2. `B::buffer` holds floats in that space: `B::resize(buf, n)` makes room for n (old contents
///     need not survive), `buf.data()` is a float*;
///  3. `B::matrix_type` is a row-major weight matrix in that space and `B::weights_type` has
///     model_weights' member names (embed, layers[l].attn_norm, wq, ..., norm, lm_head), with
///     vectors as `const float*`; `weights()` returns it (borrowed or uploaded, B decides);
///  4. the operations, each on n rows, queued in order on the backend's stream of work:
///       embed(tokens, x)                          x [n, hidden] = embed rows of host token ids
///       rmsnorm(x, rows, dim, weight, eps, out)   per row of dim: x / rms(x) * weight
///       matmul(x, rows, {{&w, y}, ...})           y = x w^T for each product (one x)
///       rope(x, n, heads, first_pos)              rotate-half RoPE at positions first_pos + t
///       silu_mul(gate, up, n)                     gate = silu(gate) * up
///       add(x, y, n)                              x += y
///       to_host(x, n) -> std::vector<float>       the n floats at x, once the queue is done
///  5. `threads()`: the host threads the backend runs the products on (1 when none compute).
/// Not required: that two backends give the same bits (they do not: BLAS against cuBLAS), or any
/// particular product algorithm; a backend may take another path for rows == 1 (one token).

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include <kvsieve/core/space.hpp>

namespace llama {

/// One product y = x w^T of a batch that shares x: w [out, in], y [rows, out] in the backend's
/// memory.
template <class Matrix>
struct product {
  const Matrix* w;
  float* y;
};

template <class B>
concept backend_buffers = kvsieve::memory_space<typename B::memory_space> &&
                          requires(typename B::buffer& buf, std::size_t n) {
                            B::resize(buf, n);
                            { buf.data() } -> std::same_as<float*>;
                          };

template <class B>
concept backend_weights = requires(const B& b) {
  typename B::matrix_type;
  { b.weights() } -> std::same_as<const typename B::weights_type&>;
  { b.weights().embed } -> std::same_as<const typename B::matrix_type&>;
  { b.weights().norm } -> std::convertible_to<const float*>;
  { b.weights().layers[0].attn_norm } -> std::convertible_to<const float*>;
};

template <class B>
concept backend_ops =
    requires(B& b, const B& cb, std::span<const std::int32_t> ids, float* x, const float* y,
             std::size_t n, std::initializer_list<product<typename B::matrix_type>> ps) {
      b.embed(ids, x);
      b.rmsnorm(y, n, n, y, 0.0F, x);
      b.matmul(y, n, ps);
      b.rope(x, n, n, n);
      b.silu_mul(x, y, n);
      b.add(x, y, n);
      { b.to_host(y, n) } -> std::same_as<std::vector<float>>;
      { cb.threads() } -> std::convertible_to<std::size_t>;
    };

template <class B>
concept forward_backend = backend_buffers<B> && backend_weights<B> && backend_ops<B>;

template <class>
inline constexpr bool no_backend_for = false;

/// The backend of a model whose cache lives in Space: cpu_backend for kvsieve::host_space
/// (cpu_backend.hpp), cuda_backend for kvsieve::cuda_space (cuda_backend.cuh, nvcc only).
template <class Space>
struct backend_for {
  static_assert(no_backend_for<Space>,
                "llama::model: no forward backend for this cache's memory space; for "
                "kvsieve::cuda_space include <llama/cuda_backend.cuh> in a TU compiled by nvcc");
};

template <class Space>
using backend_for_t = typename backend_for<Space>::type;

} // namespace llama
