// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// adaptive_cache<Ladder, Profiler, paged_store<T, cuda_space>>: the device backend of the one
/// cache template (cache/adaptive_cache.hpp), chosen by its store's memory space. Same
/// constructor, same calls taking cuda_views (tensor_view<..., cuda_space>), same report; the
/// step rules (cache/step_rule.hpp), the per-head state and the report (cache/detail/
/// cache_state.hpp) and the profiling (profile/plan.hpp, on the host) are the host cache's code.
///   prefill: fused causal attention + profiling statistics (attention/cuda/prefill.cuh), one
///     download of the O(L) statistics, the host head_planner, then one compaction pass into the
///     device store. Synchronises once.
///   decode: a batch of sequences at one layer in five launches, no allocation and no host sync
///     (step_plan, step_write, decode attention, the merge of the heads it split, step_update:
///     cache/cuda/detail/step_kernels.cuh), so a step can be captured into a CUDA graph and
///     replayed (advance() counts each launch). Policies are evaluated on the device: their
///     keeps/window/budget are constexpr, so a user's policy runs there unchanged.
/// Errors: argument errors throw at once, citing the caller. A device failure during decode (the
/// page pool exhausted, a head past max_context) cannot be seen without a sync: the failing step
/// changes nothing on the device and its output is invalid, and the error is STICKY: every later
/// step does nothing on the device, and synchronize(), report(), prefill(), release() and any
/// later call that synchronises throw it (errc::out_of_memory, errc::out_of_range) until
/// clear_error() has been called; decode() throws it when the host has already seen it.
/// Not thread-safe; all work (copies included) is ordered on the cache's stream.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <source_location>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/attention/cuda/decode.cuh>
#include <kvsieve/attention/cuda/prefill.cuh>
#include <kvsieve/cache/adaptive_cache.hpp>
#include <kvsieve/cache/cuda/detail/step_kernels.cuh>
#include <kvsieve/cache/detail/cache_state.hpp>
#include <kvsieve/cache/options.hpp>
#include <kvsieve/core/cuda/numeric.cuh>
#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/core/error.hpp>
#include <kvsieve/core/tensor.hpp>
#include <kvsieve/policy/ladder.hpp>
#include <kvsieve/profile/candidates.hpp>
#include <kvsieve/profile/concepts.hpp>
#include <kvsieve/profile/plan.hpp>
#include <kvsieve/store/cuda/paged_store.cuh>

namespace kvsieve {

template <candidate_ladder Ladder, profiler Profiler, storage_element T>
class adaptive_cache<Ladder, Profiler, paged_store<T, cuda_space>> {
public:
  using ladder_type = Ladder;
  using profiler_type = Profiler;
  using store_type = paged_store<T, cuda_space>;
  using memory_space = cuda_space;

  /// geometry.max_pages (> 0) pages are allocated up front; geometry.max_context bounds a
  /// (sequence, layer)'s tokens (0: the pool). Work is ordered on the default stream.
  /// Throws like the host cache for bad options, errc::invalid_argument for a geometry the device
  /// store refuses, errc::out_of_memory when the device cannot hold the pool.
  adaptive_cache(Ladder ladder, Profiler profiler, const store_geometry& geometry,
                 cache_options options = {},
                 std::source_location where = std::source_location::current())
      : adaptive_cache(std::move(ladder), std::move(profiler), geometry, options, nullptr,
                       where) {}

  /// The same, with every launch and copy ordered on `stream` (which may be non-blocking).
  adaptive_cache(Ladder ladder, Profiler profiler, const store_geometry& geometry,
                 cache_options options, cudaStream_t stream,
                 std::source_location where = std::source_location::current())
      : ladder_(std::move(ladder)), profiler_(std::move(profiler)),
        opt_(validated(options, geometry, where)), store_(geometry),
        group_(opt_.n_head_q / geometry.n_head_kv), stream_(stream),
        layers_(static_cast<std::size_t>(geometry.n_seq) *
                static_cast<std::size_t>(geometry.n_layer)),
        heads_(store_.n_heads()), choice_(store_.n_heads()), fixed_budget_(store_.n_heads()),
        window_begin_(store_.n_heads()),
        length_(layers_.size()), prompt_length_(layers_.size()), kept_sum_(layers_.size()),
        pair_length_(static_cast<std::size_t>(max_pairs())),
        new_slot_(pair_length_.size()), step_ok_(1), status_(1),
        workspace_(max_pairs(), group_, geometry.head_dim, max_tokens()),
        step_scratch_(max_pairs(), max_tokens()) {
    choice_.fill_zero(stream_);
    fixed_budget_.fill_zero(stream_); // set for every head of a layer at its prefill
    window_begin_.fill_zero(stream_);
    length_.fill_zero(stream_);
    prompt_length_.fill_zero(stream_);
    kept_sum_.fill_zero(stream_);
    cuda::check(cudaStreamSynchronize(stream_), "adaptive_cache<cuda> construction");
  }

  /// Prompt attention, profiling and compression for one (sequence, layer): the host cache's
  /// prefill with device tensors. q, out [L, n_head_q, head_dim] and k, v [L, n_head_kv,
  /// head_dim] float (post-RoPE) in device memory; classes [L] on the host. Synchronises once.
  /// Throws as the host cache (errc::out_of_range past geometry.max_context), and
  /// errc::invalid_argument for more than 8 distinct ladder windows or 4 distinct score sources
  /// (the statistics kernel's registers).
  void prefill(std::int32_t seq, std::int32_t layer, cuda_view<const float, 3> q,
               cuda_view<const float, 3> k, cuda_view<const float, 3> v,
               std::span<const token_class> classes, cuda_view<float, 3> out,
               std::source_location where = std::source_location::current()) {
    raise_pending();
    auto& ls = layer_state(seq, layer, where);
    const auto& g = store_.geometry();
    const auto len =
        detail::prefill_length(q, k, v, classes, out, opt_.n_head_q, g, capacity(), where);
    const auto hq = static_cast<std::size_t>(opt_.n_head_q);
    const auto hkv = static_cast<std::size_t>(g.n_head_kv);
    expects(ls.length == 0, errc::bad_state, [&] {
      return fmt::format("sequence {} layer {} is already prefilled; release({}) first", seq,
                         layer, seq);
    }, where);
    const auto n = static_cast<std::int32_t>(len);
    const auto windows = ladder_windows(ladder_, n);
    const auto sources = ladder_sources(ladder_);
    expects(windows.size() <= 8, errc::invalid_argument,
            "the CUDA prefill accumulates at most 8 distinct ladder windows", where);
    expects(sources.size() <= 4, errc::invalid_argument,
            "the CUDA prefill accumulates at most 4 distinct score sources besides the plain "
            "one (budgets ranked from the last rows, an observation window, a decayed sum)",
            where);
    const std::int32_t first_row =
        opt_.recovery_rows > 0 ? std::max(0, n - opt_.recovery_rows) : 0;

    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t nw = windows.size();
    const std::size_t ns = sources.size();
    stats_.reserve_discard(hq * len * (2 + nw + ns));
    cuda::prefill_stats ps;
    ps.score = stats_.data();
    ps.colsum = stats_.data() + hq * len;
    ps.near = stats_.data() + 2 * hq * len;
    ps.sourced = stats_.data() + (2 + nw) * hq * len;
    std::copy(windows.begin(), windows.end(), ps.windows.begin());
    ps.n_windows = static_cast<std::int32_t>(nw);
    std::copy(sources.begin(), sources.end(), ps.sources.begin());
    ps.n_sources = static_cast<std::int32_t>(ns);
    ps.first_row = first_row;
    cuda::prefill_attention<float>(q.data(), k.data(), v.data(), out.data(), n, opt_.n_head_q,
                                   g.n_head_kv, g.head_dim, scale(), &ps, stream_);
    host_stats_.resize(hq * len * (2 + nw + ns));
    stats_.download(host_stats_, 0, stream_);
    const auto t1 = std::chrono::steady_clock::now();

    // Plan every KV head on the host, exactly as the host cache does: one head at a time, or
    // the whole layer at once for a layer-wide profiler (Ada-KV).
    offsets_.assign(1, 0);
    rows_.clear();
    reasons_.clear();
    scores_.clear();
    std::vector<std::uint8_t> choices(hkv);
    std::vector<std::int32_t> begins(hkv);
    std::vector<std::int32_t> budgets(hkv);
    const auto group = static_cast<std::size_t>(group_);
    group_stats_.resize(hkv * group);
    for (std::size_t qh = 0; qh < hq; ++qh) {
      // near is [n_head_q][n_windows][L] and sourced [n_head_q][n_sources][L]: one query head's
      // blocks are contiguous.
      group_stats_[qh].assign(first_row, windows, {host_stats_.data() + qh * len, len},
                              {host_stats_.data() + hq * len + qh * len, len},
                              {host_stats_.data() + 2 * hq * len + qh * nw * len, nw * len},
                              sources,
                              {host_stats_.data() + (2 + nw) * hq * len + qh * ns * len,
                               ns * len});
    }
    auto stats_of = [&](std::size_t h) {
      return std::span<const head_stats>(group_stats_).subspan(h * group, group);
    };
    auto context = [&](std::int32_t h) {
      return head_context{seq, layer, h, g.n_layer, g.n_head_kv, n};
    };
    if constexpr (layer_profiler<Profiler>) {
      layer_candidates_.resize(hkv);
      layer_choices_.assign(hkv, head_choice{});
      for (std::size_t h = 0; h < hkv; ++h) {
        planner_.measure(ladder_, stats_of(h), opt_.group, classes, opt_.n_sinks,
                         context(static_cast<std::int32_t>(h)), layer_candidates_[h]);
      }
      profiler_.choose_layer(std::span<const candidate_scores>(layer_candidates_),
                             std::span<head_choice>(layer_choices_));
    }
    const std::size_t first = store_.index({seq, layer, 0});
    for (std::size_t h = 0; h < hkv; ++h) {
      const auto& plan = [&]() -> const head_plan& {
        if constexpr (layer_profiler<Profiler>) {
          return planner_.finish(ladder_, layer_choices_[h], stats_of(h), opt_.group, classes,
                                 opt_.n_sinks, layer_candidates_[h].recovered);
        } else {
          return planner_.plan(ladder_, profiler_, stats_of(h), opt_.group, classes,
                               opt_.n_sinks, context(static_cast<std::int32_t>(h)));
        }
      }();
      auto& hs = heads_[first + h];
      hs.set(plan);
      choices[h] = hs.choice;
      begins[h] = plan.window_begin;
      budgets[h] = plan.budget;
      for (std::int32_t j = 0; j < n; ++j) {
        const auto r = plan.reasons[static_cast<std::size_t>(j)];
        if (r != keep_reason::evicted) {
          rows_.push_back(j);
          reasons_.push_back(r);
          scores_.push_back(static_cast<float>(plan.scores[static_cast<std::size_t>(j)]));
        }
      }
      offsets_.push_back(static_cast<std::int32_t>(rows_.size()));
    }

    // Compaction: one pass over the prompt's K and V into every head's pages.
    d_offsets_.reserve_discard(offsets_.size());
    d_rows_.reserve_discard(std::max<std::size_t>(rows_.size(), 1));
    d_reasons_.reserve_discard(std::max<std::size_t>(reasons_.size(), 1));
    d_scores_.reserve_discard(std::max<std::size_t>(scores_.size(), 1));
    d_classes_.reserve_discard(len);
    d_offsets_.upload_async(offsets_, 0, stream_);
    d_rows_.upload_async(rows_, 0, stream_);
    d_reasons_.upload_async(reasons_, 0, stream_);
    d_scores_.upload_async(scores_, 0, stream_);
    d_classes_.upload_async(classes, 0, stream_);
    store_.assign_prompt(first, offsets_, d_offsets_.data(), d_rows_.data(), d_reasons_.data(),
                         d_scores_.data(), d_classes_.data(), k.data(), v.data(), stream_);
    choice_.upload_async(choices, first, stream_);
    fixed_budget_.upload_async(budgets, first, stream_);
    window_begin_.upload_async(begins, first, stream_);
    const auto sl = layer_index(seq, layer);
    const std::int32_t lengths[1] = {n};
    length_.upload_async(lengths, sl, stream_);
    prompt_length_.upload_async(lengths, sl, stream_);
    const double zero[1] = {0.0};
    kept_sum_.upload_async(zero, sl, stream_);
    cuda::check(cudaStreamSynchronize(stream_), "prefill compaction");
    const auto t2 = std::chrono::steady_clock::now();
    prefill_seconds_ += std::chrono::duration<double>(t1 - t0).count();
    profile_seconds_ += std::chrono::duration<double>(t2 - t1).count();
    ls = detail::layer_entry{};
    ls.length = n;
    ls.prompt_length = n;
  }

  /// One generation step of a batch of B distinct, prefilled sequences at one layer: row b of q,
  /// out [B, n_head_q, head_dim] and k, v [B, n_head_kv, head_dim] (device) belongs to seqs[b],
  /// whose new token has class cls[b] (host spans). Enqueues five kernels; no host sync. Throws
  /// as the host cache's batched decode; the pool's capacity is checked on the device (see the
  /// file comment: a step that does not fit changes nothing and raises later).
  void decode(std::int32_t layer, std::span<const std::int32_t> seqs,
              cuda_view<const float, 3> q, cuda_view<const float, 3> k,
              cuda_view<const float, 3> v, std::span<const token_class> cls,
              cuda_view<float, 3> out,
              std::source_location where = std::source_location::current()) {
    raise_pending();
    const auto& g = store_.geometry();
    const auto nb = detail::decode_batch(seqs, q, k, v, cls, out, opt_.n_head_q, g, where);
    expects(nb <= static_cast<std::size_t>(cuda::max_batch), errc::invalid_argument, [&] {
      return fmt::format("decode batch of {} sequences outside [1, {}]", nb, cuda::max_batch);
    }, where);
    detail::expect_steppable(
        g, layer, seqs,
        [&](std::int32_t s) -> const detail::layer_entry& { return layer_state(s, layer, where); },
        capacity(), where);
    cuda::batch_heads batch;
    batch.n_seq_in_batch = static_cast<std::int32_t>(nb);
    batch.n_layer = g.n_layer;
    batch.layer = layer;
    batch.n_head_kv = g.n_head_kv;
    cuda::step_tokens tokens;
    std::int32_t max_len = 0;
    for (std::size_t b = 0; b < nb; ++b) {
      const std::int32_t s = seqs[b];
      const auto& ls = layers_[layer_index(s, layer)];
      batch.seq[b] = s;
      tokens.cls[b] = opt_.generated == generated_class_mode::frozen ? token_class::none : cls[b];
      max_len = std::max(max_len, ls.length + 1);
    }
    // A captured step is replayed at later lengths: its grids then cover every length a head
    // can reach (the blocks past a head's tokens return at once).
    const bool recording = capturing();
    const std::int32_t bound = recording ? max_tokens() : max_len;
    const auto st = state();
    const auto view = store_.view();
    cuda::detail::step_append<T, Ladder>(view, batch, ladder_, st, tokens, k.data(), v.data(),
                                         stream_);
    cuda::decode_attention<T>(view, batch, q.data(), out.data(), group_, scale(), bound,
                              workspace_, stream_);
    cuda::detail::step_update<T, Ladder>(view, batch, ladder_, st, tokens, group_,
                                         workspace_.logits.data(), workspace_.token_stride,
                                         workspace_.final_ml.data(), bound, stream_);
    if (!recording) {
      advance_mirror(layer, seqs);
    }
  }

  /// A CUDA graph holding one decode(layer, seqs, ...) call, captured on the cache's stream, was
  /// launched once more. Recording that call ran nothing and left the lengths alone; each launch
  /// of the graph is one step, which this call counts on the host (the device counts its own).
  /// Call it once per launch, in order with the other calls. A launch repeats the captured
  /// arguments: the same q, k, v, out buffers (refill them between launches) and the same new
  /// tokens' classes (capture under generated_class_mode::frozen, or for steps of one class).
  /// Throws as decode() when a sequence cannot take another step.
  void advance(std::int32_t layer, std::span<const std::int32_t> seqs,
               std::source_location where = std::source_location::current()) {
    raise_pending();
    const auto& g = store_.geometry();
    expects(!seqs.empty() && seqs.size() <= static_cast<std::size_t>(cuda::max_batch),
            errc::invalid_argument, [&] {
              return fmt::format("advance: {} sequences outside [1, {}]", seqs.size(),
                                 cuda::max_batch);
            }, where);
    detail::expect_steppable(
        g, layer, seqs,
        [&](std::int32_t s) -> const detail::layer_entry& { return layer_state(s, layer, where); },
        capacity(), where);
    advance_mirror(layer, seqs);
  }

  /// The host cache's single-sequence decode (a batch of one): q, out [n_head_q, head_dim],
  /// k, v [n_head_kv, head_dim] in device memory.
  void decode(std::int32_t seq, std::int32_t layer, cuda_view<const float, 2> q,
              cuda_view<const float, 2> k, cuda_view<const float, 2> v, token_class cls,
              cuda_view<float, 2> out,
              std::source_location where = std::source_location::current()) {
    raise_pending();
    detail::expect_decode_shapes(q, k, v, out, opt_.n_head_q, store_.geometry(), where);
    const std::int32_t seqs[1] = {seq};
    const token_class classes[1] = {cls};
    decode(layer, seqs, batch_of_one(q), batch_of_one(k), batch_of_one(v), classes,
           batch_of_one(out), where);
  }

  /// Frees every page of `seq`; it can be prefilled again. Synchronises.
  void release(std::int32_t seq, std::source_location where = std::source_location::current()) {
    raise_pending();
    const auto& g = store_.geometry();
    layer_state(seq, 0, where); // range check
    store_.clear(store_.index({seq, 0, 0}),
                 static_cast<std::size_t>(g.n_layer) * static_cast<std::size_t>(g.n_head_kv),
                 stream_);
    for (std::int32_t l = 0; l < g.n_layer; ++l) {
      layers_[layer_index(seq, l)] = detail::layer_entry{};
    }
    const std::vector<std::int32_t> zeros(static_cast<std::size_t>(g.n_layer), 0);
    length_.upload_async(zeros, layer_index(seq, 0), stream_);
    cuda::check(cudaStreamSynchronize(stream_), "release");
  }

  /// Waits for the stream and raises a pending device error (sticky: see the file comment).
  void synchronize() const {
    cuda::check(cudaStreamSynchronize(stream_), "adaptive_cache<cuda>::synchronize");
    raise_pending();
  }

  /// Acknowledges a pending device error: the steps that failed changed nothing on the device,
  /// and the host's lengths are re-read from it, so the cache is usable again (release a sequence
  /// or retry the step). Synchronises; a no-op without an error.
  void clear_error() {
    cuda::check(cudaStreamSynchronize(stream_), "adaptive_cache<cuda>::clear_error");
    if (status_.host()[0] == 0) {
      return;
    }
    std::vector<std::int32_t> lengths(layers_.size());
    length_.download(lengths, 0, stream_);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      auto& ls = layers_[i];
      ls.decode_steps -= ls.length - lengths[i];
      ls.length = lengths[i];
    }
    status_.host()[0] = 0;
  }

  /// Tokens seen by (seq, layer): 0 before prefill (the host's mirror: no sync).
  [[nodiscard]] auto length(std::int32_t seq, std::int32_t layer,
                            std::source_location where = std::source_location::current()) const
      -> std::int32_t {
    return layers_[layer_index(seq, layer, where)].length;
  }
  /// The ladder index chosen for a head (meaningful after its prefill).
  [[nodiscard]] auto choice(head_id h) const -> std::size_t {
    return heads_[store_.index(h)].choice;
  }
  /// The head's budget as its profiler fixed it (-1: the chosen candidate's own budget(ctx)).
  [[nodiscard]] auto fixed_budget(head_id h) const -> std::int32_t {
    const auto& hs = heads_[store_.index(h)];
    return hs.fixed_budget ? hs.end_budget : -1;
  }
  [[nodiscard]] auto store() const noexcept -> const store_type& { return store_; }
  [[nodiscard]] auto ladder() const noexcept -> const Ladder& { return ladder_; }
  [[nodiscard]] auto options() const noexcept -> const cache_options& { return opt_; }
  [[nodiscard]] auto group_size() const noexcept -> std::int32_t { return group_; }
  [[nodiscard]] auto stream() const noexcept -> cudaStream_t { return stream_; }

  /// Choices, memory and timings, as the host cache reports them (synchronises; raises a pending
  /// device error).
  [[nodiscard]] auto report() const -> cache_report {
    synchronize();
    const auto sizes = store_.sizes(stream_);
    std::vector<double> kept_sum(layers_.size());
    kept_sum_.download(kept_sum, 0, stream_);
    std::vector<detail::layer_entry> layers = layers_;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      layers[i].kept_fraction_sum = kept_sum[i];
    }
    return detail::make_report<Ladder>(
        store_, std::span<const detail::layer_entry>(layers),
        [&](std::size_t i) -> const head_entry& { return heads_[i]; },
        [&](head_id /*id*/, std::size_t i) { return sizes[i]; }, prefill_seconds_,
        profile_seconds_);
  }

private:
  using head_entry = detail::head_summary<Ladder::size>;

  // The host mirror advances optimistically; clear_error() re-reads it after a failed step.
  void advance_mirror(std::int32_t layer, std::span<const std::int32_t> seqs) {
    for (const std::int32_t s : seqs) {
      auto& ls = layers_[layer_index(s, layer)];
      ++ls.length;
      ++ls.decode_steps;
    }
  }
  // True while the cache's stream records a graph (the legacy stream never does).
  [[nodiscard]] auto capturing() const -> bool {
    if (stream_ == nullptr) {
      return false;
    }
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    cuda::check(cudaStreamIsCapturing(stream_, &status), "cudaStreamIsCapturing");
    return status != cudaStreamCaptureStatusNone;
  }

  template <class U>
  static auto batch_of_one(cuda_view<U, 2> x) -> cuda_view<U, 3> {
    return {x.data(), {1, x.extent(0), x.extent(1)}};
  }

  // Most tokens one head may hold (64-bit: max_context near 2^31 must not wrap).
  [[nodiscard]] auto capacity() const -> std::int64_t {
    return std::int64_t{store_.max_pages_per_head()} * store_.geometry().page_size;
  }
  // The decode workspace's bounds, allocated once at construction (decode never allocates): the
  // pairs of the largest batch, and the most tokens a head can hold. Its logits take
  // 4 * max_pairs * group * max_tokens bytes, which is why geometry.max_context matters here.
  [[nodiscard]] auto max_pairs() const -> std::int32_t {
    const auto& g = store_.geometry();
    return std::min(g.n_seq, cuda::max_batch) * g.n_head_kv;
  }
  [[nodiscard]] auto max_tokens() const -> std::int32_t {
    return static_cast<std::int32_t>(std::min<std::int64_t>(capacity(), INT32_MAX));
  }

  [[nodiscard]] auto scale() const -> float { return logit_scale(opt_, store_.geometry()); }
  [[nodiscard]] auto layer_index(std::int32_t seq, std::int32_t layer,
                                 std::source_location where = std::source_location::current())
      const -> std::size_t {
    return layer_slot(store_.geometry(), seq, layer, where);
  }
  auto layer_state(std::int32_t seq, std::int32_t layer, std::source_location where)
      -> detail::layer_entry& {
    return layers_[layer_index(seq, layer, where)];
  }

  [[nodiscard]] auto state() -> cuda::detail::cache_state {
    return {choice_.data(),       fixed_budget_.data(),   window_begin_.data(),
            length_.data(),       prompt_length_.data(),
            kept_sum_.data(),     pair_length_.data(),
            new_slot_.data(),     step_ok_.data(),
            status_.device(),     step_scratch_.view(), opt_.n_sinks,
            opt_.new_token,       opt_.group == group_reduce::worst};
  }

  // Throws the pending device error without clearing it (clear_error() does). Reads the mapped
  // status word: what the device has reported so far, without a sync.
  void raise_pending() const {
    const int st = status_.host()[0];
    if (st == 0) [[likely]] {
      return;
    }
    expects((st & cuda::detail::status_contract) == 0, errc::device,
            "a decode step found a head larger than its workspace (an internal size contract "
            "of kvsieve's kernels, please report it); the heads it names were left mid-step: "
            "call clear_error() and release the sequences of that step");
    expects((st & cuda::detail::status_oom) == 0, errc::out_of_memory,
            "a decode step found the device page pool exhausted; that step and every later one "
            "changed nothing and their outputs are invalid; call clear_error(), then release a "
            "sequence or retry");
    raise(errc::out_of_range,
          "a decode step would have exceeded max_context; that step and every later one changed "
          "nothing and their outputs are invalid; call clear_error() first");
  }

  Ladder ladder_;
  Profiler profiler_;
  cache_options opt_;
  store_type store_;
  std::int32_t group_;
  cudaStream_t stream_;
  std::vector<detail::layer_entry> layers_;
  std::vector<head_entry> heads_;
  cuda::device_buffer<std::uint8_t> choice_;
  cuda::device_buffer<std::int32_t> fixed_budget_;
  cuda::device_buffer<std::int32_t> window_begin_;
  cuda::device_buffer<std::int32_t> length_;
  cuda::device_buffer<std::int32_t> prompt_length_;
  cuda::device_buffer<double> kept_sum_;
  cuda::device_buffer<std::int32_t> pair_length_;
  cuda::device_buffer<std::int32_t> new_slot_;
  cuda::device_buffer<int> step_ok_;
  cuda::mapped_buffer<int> status_;
  cuda::decode_workspace workspace_;
  cuda::detail::step_workspace step_scratch_;
  // Prefill scratch.
  cuda::device_buffer<float> stats_;
  std::vector<float> host_stats_;
  std::vector<head_stats> group_stats_;
  head_planner planner_;
  std::vector<candidate_scores> layer_candidates_; // [n_head_kv]: a layer-wide profiler's input
  std::vector<head_choice> layer_choices_;         // [n_head_kv]: ... and its answer
  std::vector<std::int32_t> offsets_;
  std::vector<std::int32_t> rows_;
  std::vector<keep_reason> reasons_;
  std::vector<float> scores_;
  cuda::device_buffer<std::int32_t> d_offsets_;
  cuda::device_buffer<std::int32_t> d_rows_;
  cuda::device_buffer<keep_reason> d_reasons_;
  cuda::device_buffer<float> d_scores_;
  cuda::device_buffer<token_class> d_classes_;
  double prefill_seconds_ = 0.0;
  double profile_seconds_ = 0.0;
};

namespace cuda {
/// Shorthand for the device cache: adaptive_cache over paged_store<T, cuda_space>.
template <candidate_ladder Ladder, profiler Profiler, storage_element T = bfloat16>
using adaptive_cache = kvsieve::adaptive_cache<Ladder, Profiler, paged_store<T, cuda_space>>;
} // namespace cuda

} // namespace kvsieve
