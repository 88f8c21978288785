// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The LLaMA forward pass on the CPU in fp32, written as the equations (Touvron et al. 2023, as
/// Hugging Face's LlamaForCausalLM computes it). The attention call is the only place kvsieve
/// appears: cache.prefill(...) over the prompt, cache.decode(...) per generated token.
///   x = embed[token]
///   per layer:  h = rmsnorm(x) * attn_norm
///               q, k, v = h Wq^T, h Wk^T, h Wv^T;  q, k = rope(q, pos), rope(k, pos)
///               x += attention(q, k, v) Wo^T              <- kvsieve
///               h = rmsnorm(x) * mlp_norm
///               x += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
///   logits = (rmsnorm(x) * norm) lm_head^T
/// Matrix products go through OpenBLAS's sgemm for a prompt (BLAS itself single-threaded) and
/// matvec.cpp (Highway) for one token. The model splits each product's output rows into chunks
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

/// One product y = x w^T of a batch that shares x: y [rows, w->rows].
struct product {
  const matrix* w;
  float* y;
};

/// y_j = x w_j^T for every product j (all w_j of x's width): one parallel loop over the
/// concatenated output rows, so q/k/v (or gate/up) cost one hand-off, not three. The chunks
/// (one BLAS call each) depend on the shapes only, never on the thread count, and run in any
/// order: the results are the same bits with any pool. Small batches stay on the calling thread
/// (see parallel_min_macs).
template <kvsieve::executor Executor>
void matmul(const float* x, std::size_t rows, std::initializer_list<product> ps,
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

/// The decoder over a KV cache type (any kvsieve::adaptive_cache): weights are borrowed.
/// The matrix products run on a kvsieve::thread_pool: its own of `threads` threads (counting the
/// caller; 0: default_threads()), or a borrowed one, which the cache's attention can share
/// (cache_options::threads) so that one set of threads serves the whole step.
template <class Cache>
class model {
public:
  model(const config& cfg, const model_weights& w, std::size_t threads = 0)
      : model(cfg, w, std::make_unique<kvsieve::thread_pool>(threads > 0 ? threads
                                                                         : default_threads())) {}

  /// Borrows `pool`, which must outlive the model.
  model(const config& cfg, const model_weights& w, kvsieve::thread_pool& pool)
      : cfg_(cfg), w_(w), rope_(static_cast<std::size_t>(cfg.head_dim), cfg.rope_theta),
        pool_(&pool) {
    ops::use_single_threaded_blas();
  }

  /// Threads running the matrix products, the caller included.
  [[nodiscard]] auto threads() const -> std::size_t { return pool_->size(); }
  /// The pool running the matrix products.
  [[nodiscard]] auto pool() const -> kvsieve::thread_pool& { return *pool_; }

  /// Runs the prompt through every layer of sequence `seq`; returns the logits of every position
  /// when `all_logits` ([L, vocab]) or of the last one ([vocab]).
  auto prefill(Cache& cache, std::int32_t seq, std::span<const std::int32_t> tokens,
               std::span<const kvsieve::token_class> classes, bool all_logits = false)
      -> std::vector<float> {
    kvsieve::expects(!tokens.empty(), kvsieve::errc::invalid_argument, "empty prompt");
    kvsieve::expects(tokens.size() <= static_cast<std::size_t>(cfg_.max_position_embeddings),
                     kvsieve::errc::invalid_argument, [&] {
                       return fmt::format("prompt of {} tokens exceeds max_position_embeddings {}",
                                          tokens.size(), cfg_.max_position_embeddings);
                     });
    const std::size_t n = tokens.size();
    forward(tokens, n, [&](std::size_t layer, float* q, float* k, float* v,
                                       float* out) {
      const auto i = static_cast<std::int32_t>(layer);
      cache.prefill(seq, i, {q, {n, nh(), hd()}}, {k, {n, nkv(), hd()}}, {v, {n, nkv(), hd()}},
                    classes, {out, {n, nh(), hd()}});
    }, 0);
    return logits(all_logits ? 0 : n - 1, n);
  }

  /// One generation step: `token` at position cache.length(seq, 0); returns its logits.
  auto decode(Cache& cache, std::int32_t seq, std::int32_t token, kvsieve::token_class cls)
      -> std::vector<float> {
    const std::int32_t pos = cache.length(seq, 0);
    kvsieve::expects(pos < cfg_.max_position_embeddings, kvsieve::errc::invalid_argument,
                     "the context is full (max_position_embeddings)");
    const std::int32_t one[1] = {token};
    forward(one, 1, [&](std::size_t layer, float* q, float* k, float* v,
                                    float* out) {
      cache.decode(seq, static_cast<std::int32_t>(layer), {q, {nh(), hd()}}, {k, {nkv(), hd()}},
                   {v, {nkv(), hd()}}, cls, {out, {nh(), hd()}});
    }, pos);
    return logits(0, 1);
  }

private:
  model(const config& cfg, const model_weights& w, std::unique_ptr<kvsieve::thread_pool> own)
      : model(cfg, w, *own) {
    own_ = std::move(own);
  }

  [[nodiscard]] auto nh() const -> std::size_t { return static_cast<std::size_t>(cfg_.n_head); }
  [[nodiscard]] auto nkv() const -> std::size_t {
    return static_cast<std::size_t>(cfg_.n_head_kv);
  }
  [[nodiscard]] auto hd() const -> std::size_t { return static_cast<std::size_t>(cfg_.head_dim); }

  void matmul(const float* x, std::size_t rows, std::initializer_list<ops::product> ps) {
    ops::matmul(x, rows, ps, *pool_);
  }

  template <class Attend>
  void forward(std::span<const std::int32_t> tokens, std::size_t n, Attend&& attend,
               std::int32_t first_pos) {
    const auto dim = static_cast<std::size_t>(cfg_.hidden_size);
    const auto inter = static_cast<std::size_t>(cfg_.intermediate_size);
    x_.resize(n * dim);                    // [n, hidden] residual stream
    h_.resize(n * dim);                    // [n, hidden]
    q_.resize(n * nh() * hd());            // [n, n_head, head_dim]
    k_.resize(n * nkv() * hd());           // [n, n_head_kv, head_dim]
    v_.resize(n * nkv() * hd());           // [n, n_head_kv, head_dim]
    att_.resize(n * nh() * hd());          // [n, n_head, head_dim]
    gate_.resize(n * inter);               // [n, intermediate]
    up_.resize(n * inter);                 // [n, intermediate]
    for (std::size_t t = 0; t < n; ++t) {
      const auto id = tokens[t];
      kvsieve::expects(id >= 0 && id < cfg_.vocab_size, kvsieve::errc::invalid_argument,
                       [&] { return fmt::format("token id {} outside the vocabulary", id); });
      const float* e = w_.embed.data + static_cast<std::size_t>(id) * dim;
      std::copy(e, e + dim, x_.data() + t * dim);
    }
    const auto p0 = static_cast<std::size_t>(first_pos);
    rope_.reserve(p0 + n);
    for (std::size_t l = 0; l < w_.layers.size(); ++l) {
      const auto& lw = w_.layers[l];
      ops::rmsnorm(x_.data(), n, dim, lw.attn_norm, cfg_.rms_norm_eps, h_.data());
      matmul(h_.data(), n, {{&lw.wq, q_.data()}, {&lw.wk, k_.data()}, {&lw.wv, v_.data()}});
      for (std::size_t t = 0; t < n; ++t) {
        rope_.apply(q_.data() + t * nh() * hd(), nh(), p0 + t);
        rope_.apply(k_.data() + t * nkv() * hd(), nkv(), p0 + t);
      }
      attend(l, q_.data(), k_.data(), v_.data(), att_.data());
      matmul(att_.data(), n, {{&lw.wo, h_.data()}});
      for (std::size_t i = 0; i < n * dim; ++i) {
        x_[i] += h_[i];
      }
      ops::rmsnorm(x_.data(), n, dim, lw.mlp_norm, cfg_.rms_norm_eps, h_.data());
      matmul(h_.data(), n, {{&lw.w_gate, gate_.data()}, {&lw.w_up, up_.data()}});
      pool_->parallel_for(n * inter, elementwise_grain, [&](std::size_t b, std::size_t e) {
        for (std::size_t i = b; i < e; ++i) {
          gate_[i] = ops::silu(gate_[i]) * up_[i];
        }
      });
      matmul(gate_.data(), n, {{&lw.w_down, h_.data()}});
      for (std::size_t i = 0; i < n * dim; ++i) {
        x_[i] += h_[i];
      }
    }
  }

  // Logits of rows [first, n) of the residual stream: [n - first, vocab].
  auto logits(std::size_t first, std::size_t n) -> std::vector<float> {
    const auto dim = static_cast<std::size_t>(cfg_.hidden_size);
    const std::size_t rows = n - first;
    ops::rmsnorm(x_.data() + first * dim, rows, dim, w_.norm, cfg_.rms_norm_eps, h_.data());
    std::vector<float> out(rows * w_.lm_head.rows);
    matmul(h_.data(), rows, {{&w_.lm_head, out.data()}});
    return out;
  }

  // Elements per chunk of an element-wise loop: one decode step's run inline (one chunk).
  static constexpr std::size_t elementwise_grain = 16384;

  const config& cfg_;
  const model_weights& w_;
  ops::rope_table rope_;
  std::unique_ptr<kvsieve::thread_pool> own_; // when not borrowed (a pool is not movable)
  kvsieve::thread_pool* pool_;
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_;
};

} // namespace llama
