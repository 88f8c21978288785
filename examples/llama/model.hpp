// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The LLaMA forward pass in fp32, written once as the equations (Touvron et al. 2023, as Hugging
/// Face's LlamaForCausalLM computes it) for every backend: the CPU (cpu_backend.hpp) or the GPU
/// (cuda_backend.cuh). The attention call is the only place kvsieve appears: cache.prefill(...)
/// over the prompt, cache.decode(...) per generated token, on views of the backend's memory.
///   x = embed[token]
///   per layer:  h = rmsnorm(x) * attn_norm
///               q, k, v = h Wq^T, h Wk^T, h Wv^T;  q, k = rope(q, pos), rope(k, pos)
///               x += attention(q, k, v) Wo^T              <- kvsieve
///               h = rmsnorm(x) * mlp_norm
///               x += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
///   logits = (rmsnorm(x) * norm) lm_head^T
/// The backend follows the cache: llama::model<Cache> runs on backend_for<Cache::memory_space>,
/// so a host cache gets the CPU backend and a device cache (paged_store<T, cuda_space>) the CUDA
/// one, with nothing else to choose; the backend's operations and why they are these are in
/// backend.hpp and docs/design.md ("The reference decoder").

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/kvsieve.hpp>

#include <llama/backend.hpp>
#include <llama/config.hpp>
#include <llama/cpu_backend.hpp> // the host backend, the default for host caches
#include <llama/weights.hpp>

namespace llama {

/// The decoder over a KV cache type (any kvsieve::adaptive_cache) on Backend, which by default
/// is the one for the cache's memory space. The constructor's arguments after the weights go to
/// the backend: for cpu_backend a thread count (0: default_threads()) or a borrowed
/// kvsieve::thread_pool, which the cache's attention can share (cache_options::threads); for
/// cuda_backend an optional cudaStream_t. cpu_backend borrows the weights, cuda_backend copies
/// them to the device (the host weights may then go).
template <class Cache, forward_backend Backend = backend_for_t<typename Cache::memory_space>>
class model {
  static_assert(std::same_as<typename Backend::memory_space, typename Cache::memory_space>,
                "llama::model: the backend computes in another memory space than the cache's");

public:
  using cache_type = Cache;
  using backend_type = Backend;

  template <class... BackendArgs>
  model(const config& cfg, const model_weights& w, BackendArgs&&... args)
      : cfg_(cfg), be_(cfg, w, std::forward<BackendArgs>(args)...) {}

  /// Host threads running the matrix products, the caller included (1 on the GPU).
  [[nodiscard]] auto threads() const -> std::size_t { return be_.threads(); }
  /// The pool running the matrix products (the CPU backend's).
  [[nodiscard]] auto pool() const -> kvsieve::thread_pool&
    requires requires(const Backend& b) { b.pool(); }
  {
    return be_.pool();
  }
  [[nodiscard]] auto backend() -> Backend& { return be_; }

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
    forward(tokens, 0, [&](std::int32_t layer, float* q, float* k, float* v, float* out) {
      cache.prefill(seq, layer, {q, {n, nh(), hd()}}, {k, {n, nkv(), hd()}},
                    {v, {n, nkv(), hd()}}, classes, {out, {n, nh(), hd()}});
    });
    return logits(all_logits ? 0 : n - 1, n);
  }

  /// One generation step: `token` at position cache.length(seq, 0); returns its logits.
  auto decode(Cache& cache, std::int32_t seq, std::int32_t token, kvsieve::token_class cls)
      -> std::vector<float> {
    const std::int32_t pos = cache.length(seq, 0);
    kvsieve::expects(pos < cfg_.max_position_embeddings, kvsieve::errc::invalid_argument,
                     "the context is full (max_position_embeddings)");
    const std::int32_t one[1] = {token};
    forward(one, static_cast<std::size_t>(pos),
            [&](std::int32_t layer, float* q, float* k, float* v, float* out) {
              cache.decode(seq, layer, {q, {nh(), hd()}}, {k, {nkv(), hd()}},
                           {v, {nkv(), hd()}}, cls, {out, {nh(), hd()}});
            });
    return logits(0, 1);
  }

private:
  [[nodiscard]] auto nh() const -> std::size_t { return static_cast<std::size_t>(cfg_.n_head); }
  [[nodiscard]] auto nkv() const -> std::size_t {
    return static_cast<std::size_t>(cfg_.n_head_kv);
  }
  [[nodiscard]] auto hd() const -> std::size_t { return static_cast<std::size_t>(cfg_.head_dim); }

  // Every layer over tokens at positions first_pos + t; attend(layer, q, k, v, out) is the
  // cache's call. The residual stream is left in x_.
  template <class Attend>
  void forward(std::span<const std::int32_t> tokens, std::size_t first_pos, Attend&& attend) {
    const std::size_t n = tokens.size();
    const auto dim = static_cast<std::size_t>(cfg_.hidden_size);
    const auto inter = static_cast<std::size_t>(cfg_.intermediate_size);
    const float eps = cfg_.rms_norm_eps;
    for (const auto id : tokens) {
      kvsieve::expects(id >= 0 && id < cfg_.vocab_size, kvsieve::errc::invalid_argument,
                       [&] { return fmt::format("token id {} outside the vocabulary", id); });
    }
    Backend::resize(x_, n * dim);          // [n, hidden] residual stream
    Backend::resize(h_, n * dim);          // [n, hidden]
    Backend::resize(q_, n * nh() * hd());  // [n, n_head, head_dim]
    Backend::resize(k_, n * nkv() * hd()); // [n, n_head_kv, head_dim]
    Backend::resize(v_, n * nkv() * hd()); // [n, n_head_kv, head_dim]
    Backend::resize(att_, n * nh() * hd()); // [n, n_head, head_dim]
    Backend::resize(gate_, n * inter);     // [n, intermediate]
    Backend::resize(up_, n * inter);       // [n, intermediate]
    float* x = x_.data();
    float* h = h_.data();
    float* q = q_.data();
    float* k = k_.data();
    float* v = v_.data();
    float* att = att_.data();
    float* gate = gate_.data();
    float* up = up_.data();
    const auto& w = be_.weights();
    be_.embed(tokens, x);
    for (std::size_t l = 0; l < w.layers.size(); ++l) {
      const auto& lw = w.layers[l];
      be_.rmsnorm(x, n, dim, lw.attn_norm, eps, h);
      be_.matmul(h, n, {{&lw.wq, q}, {&lw.wk, k}, {&lw.wv, v}});
      be_.rope(q, n, nh(), first_pos);
      be_.rope(k, n, nkv(), first_pos);
      attend(static_cast<std::int32_t>(l), q, k, v, att);
      be_.matmul(att, n, {{&lw.wo, h}});
      be_.add(x, h, n * dim);
      be_.rmsnorm(x, n, dim, lw.mlp_norm, eps, h);
      be_.matmul(h, n, {{&lw.w_gate, gate}, {&lw.w_up, up}});
      be_.silu_mul(gate, up, n * inter);
      be_.matmul(gate, n, {{&lw.w_down, h}});
      be_.add(x, h, n * dim);
    }
  }

  // Logits of rows [first, n) of the residual stream, on the host: [n - first, vocab].
  auto logits(std::size_t first, std::size_t n) -> std::vector<float> {
    const auto dim = static_cast<std::size_t>(cfg_.hidden_size);
    const auto vocab = static_cast<std::size_t>(cfg_.vocab_size);
    const std::size_t rows = n - first;
    const auto& w = be_.weights();
    be_.rmsnorm(x_.data() + first * dim, rows, dim, w.norm, cfg_.rms_norm_eps, h_.data());
    Backend::resize(out_, rows * vocab);
    be_.matmul(h_.data(), rows, {{&w.lm_head, out_.data()}});
    return be_.to_host(out_.data(), rows * vocab);
  }

  const config& cfg_;
  Backend be_;
  typename Backend::buffer x_, h_, q_, k_, v_, att_, gate_, up_, out_;
};

} // namespace llama
