// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::cpu_backend: the decoder's forward pass (model.hpp) on the CPU in fp32, the host model
/// of forward_backend (backend.hpp) and backend_for<kvsieve::host_space>. Weights are borrowed
/// from model_weights (memory-mapped or converted at load); buffers are std::vector<float>.
/// Matrix products go through OpenBLAS's sgemm for a prompt (BLAS itself single-threaded) and
/// matvec.cpp (Highway) for one token. The backend splits each product's output rows into chunks
/// over a kvsieve::thread_pool, whose caller works too and never waits for a worker the OS has
/// not scheduled, so decode keeps most of its speed when another process holds a core, where
/// OpenMP's barriers (the previous design) made it 60x slower (docs/performance.md, "Decoder").

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <cblas.h>
#include <fmt/format.h>

#include <kvsieve/core/parallel.hpp>
#include <kvsieve/kvsieve.hpp>

#include <llama/backend.hpp>
#include <llama/config.hpp>
#include <llama/matvec.hpp>
#include <llama/weights.hpp>

extern "C" void openblas_set_num_threads(int); // OpenBLAS extension (not in cblas.h everywhere)

namespace llama {

/// Threads for the model's matrix products when the program does not choose: the environment
/// variable KVSIEVE_THREADS (an integer in [1, 256]) when set, else the hardware's count.
/// Throws errc::invalid_argument naming the variable when it is set to anything else.
[[nodiscard]] inline auto default_threads() -> std::size_t {
  const char* env = std::getenv("KVSIEVE_THREADS");
  if (env == nullptr || *env == '\0') {
    return std::max<std::size_t>(1, std::thread::hardware_concurrency());
  }
  char* end = nullptr;
  const long v = std::strtol(env, &end, 10);
  kvsieve::expects(*end == '\0' && v >= 1 && v <= 256, kvsieve::errc::invalid_argument, [&] {
    return fmt::format("KVSIEVE_THREADS must be an integer in [1, 256], got '{:.40}'", env);
  });
  return static_cast<std::size_t>(v);
}

namespace ops {

/// Products of fewer multiply-adds than this run on the calling thread: below it a pool's
/// hand-off costs about what it saves.
inline constexpr std::size_t parallel_min_macs = std::size_t{1} << 16;
/// Products are computed in chunks of output rows: about this many multiply-adds for one token
/// (128 KB of weights, ~10 us), at least 64 rows (a prompt's chunk re-packs the prompt's
/// activations once per 64 rows). Many chunks per thread balance dynamically, and a worker that
/// the OS deschedules holds up at most one short chunk.
inline constexpr std::size_t chunk_macs = std::size_t{1} << 15;
inline constexpr std::size_t min_chunk_rows = 64;

/// OpenBLAS's own threads busy-wait for work and do not share cores well with another process
/// (issue 9): BLAS runs single-threaded, and the model parallelises around it. Process-wide.
inline void use_single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

/// y[r, o] = sum_i x[r, i] * w[o, i] for output rows o in [o0, o1): x [rows, w.cols],
/// y [rows, w.rows] (the whole row stride), on the calling thread: BLAS sgemm for a prompt,
/// matvec (matvec.cpp) for one token.
inline void matmul_rows(const float* x, std::size_t rows, const matrix& w, std::size_t o0,
                        std::size_t o1, float* y) {
  const auto n_out = static_cast<int>(o1 - o0);
  const auto n_in = static_cast<int>(w.cols);
  const float* wo = w.data + o0 * w.cols;
  if (rows == 1) {
    matvec(wo, o1 - o0, w.cols, x, y + o0);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), n_out, n_in,
                1.0F, x, n_in, wo, n_in, 0.0F, y + o0, static_cast<int>(w.rows));
  }
}

/// y_j = x w_j^T for every product j (all w_j of x's width): one parallel loop over the
/// concatenated output rows, so q/k/v (or gate/up) cost one hand-off, not three. The chunks
/// (one BLAS call each) depend on the shapes only, never on the thread count, and run in any
/// order: the results are the same bits with any pool. Small batches stay on the calling thread
/// (see parallel_min_macs).
template <kvsieve::executor Executor>
void matmul(const float* x, std::size_t rows, std::initializer_list<llama::product<matrix>> ps,
            Executor& pool) {
  std::size_t n_out = 0;
  for (const auto& p : ps) {
    n_out += p.w->rows;
  }
  const std::size_t per_row = rows * ps.begin()->w->cols;
  const std::size_t grain = std::max(min_chunk_rows, (chunk_macs / per_row + 15) / 16 * 16);
  const auto run = [&](std::size_t begin, std::size_t end) { // begin: a multiple of grain
    for (std::size_t c0 = begin; c0 < end; c0 += grain) {
      const std::size_t c1 = std::min(end, c0 + grain);
      std::size_t first = 0; // of the current product, in the concatenated rows
      for (const auto& p : ps) {
        const std::size_t o0 = std::max(c0, first);
        const std::size_t o1 = std::min(c1, first + p.w->rows);
        if (o0 < o1) {
          matmul_rows(x, rows, *p.w, o0 - first, o1 - first, p.y);
        }
        first += p.w->rows;
      }
    }
  };
  if (pool.size() == 1 || n_out * per_row < parallel_min_macs) {
    run(0, n_out);
  } else {
    pool.parallel_for(n_out, grain, run);
  }
}

/// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, per row of `dim` values.
inline void rmsnorm(const float* x, std::size_t rows, std::size_t dim, const float* weight,
                    float eps, float* out) {
  constexpr std::size_t lanes = 8; // independent partial sums: the compiler may vectorise them
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float part[lanes] = {};
    std::size_t i = 0;
    for (; i + lanes <= dim; i += lanes) {
      for (std::size_t j = 0; j < lanes; ++j) {
        part[j] += xr[i + j] * xr[i + j];
      }
    }
    float ss = 0.0F;
    for (; i < dim; ++i) {
      ss += xr[i] * xr[i];
    }
    for (const float p : part) {
      ss += p;
    }
    const float inv = 1.0F / std::sqrt(ss / static_cast<float>(dim) + eps);
    for (std::size_t k = 0; k < dim; ++k) {
      out[r * dim + k] = weight[k] * (xr[k] * inv);
    }
  }
}

/// cos and sin of RoPE's angles, one row of d/2 per position, extended on demand: the angles are
/// computed once per position instead of once per layer, head and step.
class rope_table {
public:
  rope_table(std::size_t d, float theta) : half_(d / 2), inv_freq_(d / 2) {
    for (std::size_t i = 0; i < half_; ++i) {
      // As HF computes it, in float: theta^(-2i/d).
      inv_freq_[i] = 1.0F / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(d));
    }
  }

  /// d/2: the pairs rotated per head.
  [[nodiscard]] auto half() const -> std::size_t { return half_; }

  /// Makes rows [0, n_pos) available.
  void reserve(std::size_t n_pos) {
    const std::size_t have = cos_.size() / std::max<std::size_t>(half_, 1);
    if (n_pos <= have) {
      return;
    }
    n_pos = std::max(n_pos, 2 * have); // amortised growth, one token at a time while decoding
    cos_.resize(n_pos * half_);
    sin_.resize(n_pos * half_);
    for (std::size_t p = have; p < n_pos; ++p) {
      for (std::size_t i = 0; i < half_; ++i) {
        const float angle = static_cast<float>(p) * inv_freq_[i];
        cos_[p * half_ + i] = std::cos(angle);
        sin_[p * half_ + i] = std::sin(angle);
      }
    }
  }

  /// Rotary embedding in Hugging Face's rotate_half layout: for i < d/2, (x_i, x_{i+d/2}) rotate
  /// by pos * theta^(-2i/d). x: [n_head, d]. Precondition: reserve(pos + 1).
  void apply(float* x, std::size_t n_head, std::size_t pos) const {
    const float* c = cos_.data() + pos * half_;
    const float* s = sin_.data() + pos * half_;
    for (std::size_t h = 0; h < n_head; ++h) {
      float* lo = x + h * 2 * half_;
      float* hi = lo + half_;
      for (std::size_t i = 0; i < half_; ++i) {
        const float a = lo[i];
        const float b = hi[i];
        lo[i] = a * c[i] - b * s[i];
        hi[i] = b * c[i] + a * s[i];
      }
    }
  }

private:
  std::size_t half_;
  std::vector<float> inv_freq_; // [d/2]
  std::vector<float> cos_, sin_; // [n_pos, d/2]
};

inline auto silu(float x) -> float { return x / (1.0F + std::exp(-x)); }

} // namespace ops

/// The forward pass's operations on the CPU (forward_backend, backend.hpp). The matrix products
/// and silu_mul run on a kvsieve::thread_pool: its own of `threads` threads (counting the caller;
/// 0: default_threads()), or a borrowed one, which the cache's attention can share
/// (cache_options::threads) so that one set of threads serves the whole step. Every result is
/// the same bits for any thread count.
class cpu_backend {
public:
  using memory_space = kvsieve::host_space;
  using buffer = std::vector<float>;
  using matrix_type = matrix;
  using weights_type = model_weights;

  cpu_backend(const config& cfg, const model_weights& w, std::size_t threads = 0)
      : cpu_backend(cfg, w,
                    std::make_unique<kvsieve::thread_pool>(threads > 0 ? threads
                                                                       : default_threads())) {}

  /// Borrows `pool`, which must outlive the backend.
  cpu_backend(const config& cfg, const model_weights& w, kvsieve::thread_pool& pool)
      : w_(w), rope_(static_cast<std::size_t>(cfg.head_dim), cfg.rope_theta), pool_(&pool) {
    ops::use_single_threaded_blas();
  }

  /// The weights, borrowed: they must outlive the backend.
  [[nodiscard]] auto weights() const -> const model_weights& { return w_; }
  /// Threads running the matrix products, the caller included.
  [[nodiscard]] auto threads() const -> std::size_t { return pool_->size(); }
  /// The pool running the matrix products.
  [[nodiscard]] auto pool() const -> kvsieve::thread_pool& { return *pool_; }

  static void resize(buffer& b, std::size_t n) { b.resize(n); }

  /// x [n, hidden] = the embedding rows of tokens (ids checked by the model).
  void embed(std::span<const std::int32_t> tokens, float* x) const {
    const std::size_t dim = w_.embed.cols;
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      const float* e = w_.embed.data + static_cast<std::size_t>(tokens[t]) * dim;
      std::copy(e, e + dim, x + t * dim);
    }
  }

  static void rmsnorm(const float* x, std::size_t rows, std::size_t dim, const float* weight,
                      float eps, float* out) {
    ops::rmsnorm(x, rows, dim, weight, eps, out);
  }

  /// y_j = x w_j^T for every product j: sgemm for rows > 1, matvec for one token (ops::matmul).
  void matmul(const float* x, std::size_t rows,
              std::initializer_list<llama::product<matrix>> ps) const {
    ops::matmul(x, rows, ps, *pool_);
  }

  /// x [n, heads, head_dim] rotated at positions first_pos + t, from the cos/sin table.
  void rope(float* x, std::size_t n, std::size_t heads, std::size_t first_pos) {
    rope_.reserve(first_pos + n);
    const std::size_t row = heads * 2 * rope_.half(); // [heads, head_dim]
    for (std::size_t t = 0; t < n; ++t) {
      rope_.apply(x + t * row, heads, first_pos + t);
    }
  }

  void silu_mul(float* gate, const float* up, std::size_t n) const {
    pool_->parallel_for(n, elementwise_grain, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        gate[i] = ops::silu(gate[i]) * up[i];
      }
    });
  }

  static void add(float* x, const float* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      x[i] += y[i];
    }
  }

  static auto to_host(const float* x, std::size_t n) -> std::vector<float> {
    return {x, x + n};
  }

private:
  cpu_backend(const config& cfg, const model_weights& w, std::unique_ptr<kvsieve::thread_pool> own)
      : cpu_backend(cfg, w, *own) {
    own_ = std::move(own);
  }

  // Elements per chunk of an element-wise loop: one decode step's run inline (one chunk).
  static constexpr std::size_t elementwise_grain = 16384;

  const model_weights& w_;
  ops::rope_table rope_;
  std::unique_ptr<kvsieve::thread_pool> own_; // when not borrowed (a pool is not movable)
  kvsieve::thread_pool* pool_;
};

static_assert(forward_backend<cpu_backend>);

template <>
struct backend_for<kvsieve::host_space> {
  using type = cpu_backend;
};

} // namespace llama
