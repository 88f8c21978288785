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

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <kvsieve/kvsieve.hpp>

#include <llama/config.hpp>
#include <llama/weights.hpp>

namespace llama {

namespace ops {

/// y[r, o] = sum_i x[r, i] * w[o, i] for r < rows: x [rows, w.cols], y [rows, w.rows].
inline void matmul(const float* x, std::size_t rows, const matrix& w, float* y) {
  const auto n_out = static_cast<std::ptrdiff_t>(w.rows);
  const std::size_t n_in = w.cols;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t o = 0; o < n_out; ++o) {
    const float* wo = w.data + static_cast<std::size_t>(o) * n_in;
    for (std::size_t r = 0; r < rows; ++r) {
      const float* xr = x + r * n_in;
      float acc = 0.0F;
      for (std::size_t i = 0; i < n_in; ++i) {
        acc += xr[i] * wo[i];
      }
      y[r * w.rows + static_cast<std::size_t>(o)] = acc;
    }
  }
}

/// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, per row of `dim` values.
inline void rmsnorm(const float* x, std::size_t rows, std::size_t dim, const float* weight,
                    float eps, float* out) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float ss = 0.0F;
    for (std::size_t i = 0; i < dim; ++i) {
      ss += xr[i] * xr[i];
    }
    const float inv = 1.0F / std::sqrt(ss / static_cast<float>(dim) + eps);
    for (std::size_t i = 0; i < dim; ++i) {
      out[r * dim + i] = weight[i] * (xr[i] * inv);
    }
  }
}

/// Rotary embedding in Hugging Face's rotate_half layout, in float as HF computes it: for
/// i < d/2, angle = pos * theta^(-2i/d) and (x_i, x_{i+d/2}) rotate by it. x: [n_head, d].
inline void rope(float* x, std::size_t n_head, std::size_t d, std::int32_t pos, float theta) {
  const std::size_t half = d / 2;
  for (std::size_t i = 0; i < half; ++i) {
    const float inv_freq =
        1.0F / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(d));
    const float angle = static_cast<float>(pos) * inv_freq;
    const float c = std::cos(angle);
    const float s = std::sin(angle);
    for (std::size_t h = 0; h < n_head; ++h) {
      float* v = x + h * d;
      const float a = v[i];
      const float b = v[i + half];
      v[i] = a * c - b * s;
      v[i + half] = b * c + a * s;
    }
  }
}

inline auto silu(float x) -> float { return x / (1.0F + std::exp(-x)); }

} // namespace ops

/// The decoder over a KV cache type (any kvsieve::adaptive_cache): weights are borrowed.
template <class Cache>
class model {
public:
  model(const config& cfg, const model_weights& w) : cfg_(cfg), w_(w) {}

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
  [[nodiscard]] auto nh() const -> std::size_t { return static_cast<std::size_t>(cfg_.n_head); }
  [[nodiscard]] auto nkv() const -> std::size_t {
    return static_cast<std::size_t>(cfg_.n_head_kv);
  }
  [[nodiscard]] auto hd() const -> std::size_t { return static_cast<std::size_t>(cfg_.head_dim); }

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
    for (std::size_t l = 0; l < w_.layers.size(); ++l) {
      const auto& lw = w_.layers[l];
      ops::rmsnorm(x_.data(), n, dim, lw.attn_norm, cfg_.rms_norm_eps, h_.data());
      ops::matmul(h_.data(), n, lw.wq, q_.data());
      ops::matmul(h_.data(), n, lw.wk, k_.data());
      ops::matmul(h_.data(), n, lw.wv, v_.data());
      for (std::size_t t = 0; t < n; ++t) {
        const auto pos = first_pos + static_cast<std::int32_t>(t);
        ops::rope(q_.data() + t * nh() * hd(), nh(), hd(), pos, cfg_.rope_theta);
        ops::rope(k_.data() + t * nkv() * hd(), nkv(), hd(), pos, cfg_.rope_theta);
      }
      attend(l, q_.data(), k_.data(), v_.data(), att_.data());
      ops::matmul(att_.data(), n, lw.wo, h_.data());
      for (std::size_t i = 0; i < n * dim; ++i) {
        x_[i] += h_[i];
      }
      ops::rmsnorm(x_.data(), n, dim, lw.mlp_norm, cfg_.rms_norm_eps, h_.data());
      ops::matmul(h_.data(), n, lw.w_gate, gate_.data());
      ops::matmul(h_.data(), n, lw.w_up, up_.data());
      for (std::size_t i = 0; i < n * inter; ++i) {
        gate_[i] = ops::silu(gate_[i]) * up_[i];
      }
      ops::matmul(gate_.data(), n, lw.w_down, h_.data());
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
    ops::matmul(h_.data(), rows, w_.lm_head, out.data());
    return out;
  }

  const config& cfg_;
  const model_weights& w_;
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_;
};

} // namespace llama
