// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// adaptive_cache<Ladder, Profiler, Store>: FastGen as a KV cache (Algorithms 1 and 2).
///   prefill(seq, layer, q, k, v, classes, out): causal attention over the prompt with the
///     profiler's statistics fused in; per KV head, every ladder candidate is measured, the
///     profiler picks one, and only the tokens it keeps are written to the store.
///   decode(seq, layer, q, k, v, cls, out): the new token is appended, the group attends over the
///     head's resident tokens, scores accumulate, and the head's policy evicts what it no longer
///     keeps (window leavers, budget overflow, an unkept new token): O(1) store operations per
///     head and one O(n) pass over 4-byte scores, fused with nothing copied.
/// Keys are cached as given (post-RoPE) and never re-rotated (fastgen-spec §6 item 8).
/// With cache_options::threads, prefill runs its query heads and decode the attention of its KV
/// heads on that pool; the results are the same for any thread count.
/// Not thread-safe: one cache per thread, or external locking.
///
/// One class template for both backends: the store's memory space picks it. Store = paged_store<T>
/// (or any host_kv_store) is this host cache; Store = paged_store<T, cuda_space> is the device
/// cache (cache/cuda/adaptive_cache.cuh, nvcc only), with the same constructor, the same calls
/// taking tensor_views of its space, and the same report. The device cache adds an optional
/// stream and defers device errors to synchronize(); on the host, synchronize() and clear_error()
/// have nothing to do.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <source_location>
#include <span>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/attention/decode.hpp>
#include <kvsieve/attention/prefill.hpp>
#include <kvsieve/cache/detail/cache_state.hpp>
#include <kvsieve/cache/options.hpp>
#include <kvsieve/cache/step_algorithm.hpp>
#include <kvsieve/core/error.hpp>
#include <kvsieve/core/tensor.hpp>
#include <kvsieve/policy/ladder.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/profile/candidates.hpp>
#include <kvsieve/profile/concepts.hpp>
#include <kvsieve/profile/plan.hpp>
#include <kvsieve/store/concepts.hpp>
#include <kvsieve/store/paged_store.hpp>

namespace kvsieve {

template <candidate_ladder Ladder, profiler Profiler, kv_store Store = paged_store<float>>
  requires std::constructible_from<Store, const store_geometry&>
class adaptive_cache {
  // A store that is not a host_kv_store is refused here, naming the piece it lacks (the device
  // store selects the partial specialisation in cache/cuda/adaptive_cache.cuh instead).
  static_assert(Store::memory_space::host_accessible,
                "kvsieve::adaptive_cache: a device store needs the device cache: include "
                "<kvsieve/cache/cuda/adaptive_cache.cuh> (nvcc) and use paged_store<T, cuda_space>");
  static_assert(storage_element<typename Store::value_type>,
                "kvsieve::adaptive_cache: the store's value_type is not a storage_element");
  static_assert(host_pages<Store>,
                "kvsieve::adaptive_cache: the store does not model host_pages (page_count(head), "
                "page(head, p) as page_view): the host cache reads K and V page by page");
  static_assert(host_metadata<Store>,
                "kvsieve::adaptive_cache: the store does not model host_metadata (meta(head, "
                "slot), set_reason(head, slot, r))");
  static_assert(capacity_checked<Store>,
                "kvsieve::adaptive_cache: the store does not model capacity_checked "
                "(pages_to_append(head), can_allocate(n))");

public:
  using ladder_type = Ladder;
  using profiler_type = Profiler;
  using store_type = Store;
  using memory_space = typename Store::memory_space;

  /// Throws errc::invalid_argument for a bad geometry, n_head_q not a multiple of n_head_kv,
  /// negative n_sinks or recovery_rows, or a non-finite/negative scale.
  /// Every public entry point takes a defaulted `where` (do not pass it): errors about the
  /// caller's arguments cite the caller's file and line, not this header's.
  adaptive_cache(Ladder ladder, Profiler profiler, const store_geometry& geometry,
                 cache_options options = {},
                 std::source_location where = std::source_location::current())
      : ladder_(std::move(ladder)), profiler_(std::move(profiler)), store_(geometry),
        opt_(validated(options, geometry, where)), group_(opt_.n_head_q / geometry.n_head_kv),
        layers_(static_cast<std::size_t>(geometry.n_seq) *
                static_cast<std::size_t>(geometry.n_layer)),
        heads_(layers_.size() * static_cast<std::size_t>(geometry.n_head_kv)),
        steps_(static_cast<std::size_t>(geometry.n_head_kv)),
        probs_(static_cast<std::size_t>(geometry.n_head_kv)),
        rows_(threads()), decode_scratch_(threads()) {}

  /// A layer's attention is split over cache_options::threads only when it has at least this many
  /// multiply-adds (prefill: summed over query heads; decode: over KV heads): below it, waking a
  /// thread costs more than it saves.
  static constexpr double parallel_min_macs = 1 << 18;

  /// Prompt attention for one (sequence, layer), then profiling and compression.
  ///  q, out: [L, n_head_q, head_dim]; k, v: [L, n_head_kv, head_dim] post-RoPE; classes: [L].
  /// Throws: errc::out_of_range (seq, layer), errc::invalid_argument (empty prompt; a NaN or
  /// infinity in q, k or v under cache_options::reject_non_finite),
  /// errc::shape_mismatch (the prompt length is the row count q, k, v, out and classes agree on;
  /// the message names the ones that differ), errc::bad_state (already prefilled: release(seq)
  /// first), errc::out_of_memory (pool exhausted; this layer is rolled back and may be prefilled
  /// again). Argument errors cite `where`, the caller.
  void prefill(std::int32_t seq, std::int32_t layer, tensor_view<const float, 3> q,
               tensor_view<const float, 3> k, tensor_view<const float, 3> v,
               std::span<const token_class> classes, tensor_view<float, 3> out,
               std::source_location where = std::source_location::current()) {
    auto& ls = layer_state(seq, layer, where);
    const auto& g = store_.geometry();
    const auto length =
        detail::prefill_length(q, k, v, classes, out, opt_.n_head_q, g, INT64_MAX, where);
    const auto hq = static_cast<std::size_t>(opt_.n_head_q);
    const auto hkv = static_cast<std::size_t>(g.n_head_kv);
    const auto d = static_cast<std::size_t>(g.head_dim);
    expect_finite_inputs("prefill", q, k, v, where);
    expects(ls.length == 0, errc::bad_state, [&] {
      return fmt::format("sequence {} layer {} is already prefilled; release({}) first", seq,
                         layer, seq);
    }, where);
    const auto n = static_cast<std::int32_t>(length);
    const auto windows = ladder_windows(ladder_, n);
    const auto sources = ladder_sources(ladder_);
    const std::int32_t first_row = opt_.recovery_rows > 0 ? n - opt_.recovery_rows : 0;
    // KV heads go in batches whose query heads run in parallel (enough of them to keep every
    // thread busy), then each KV head of the batch is profiled and compressed in turn.
    const double macs = static_cast<double>(hq) * static_cast<double>(length) *
                        static_cast<double>(length + 1) * static_cast<double>(d);
    const std::size_t workers = macs >= parallel_min_macs ? threads() : 1;
    const auto group = static_cast<std::size_t>(group_);
    const std::size_t batch = std::min(hkv, (2 * workers + group - 1) / group); // >= 1
    if constexpr (layer_wide) { // the profiler sees every KV head of the layer at once
      stats_.resize(hkv * group);
    } else if (workers == 1) {
      stats_.resize(group); // serial: one KV head's statistics at a time
    } else {
      stats_.resize(batch * group);
    }
    const std::size_t per_batch = stats_.size() / group;
    try {
      for (std::size_t h0 = 0; h0 < hkv; h0 += per_batch) {
        const std::size_t heads = std::min(per_batch, hkv - h0);
        const auto t0 = clock::now();
        run(workers, heads * group, [&](std::size_t b, std::size_t e, std::size_t slot) {
          for (std::size_t i = b; i < e; ++i) {
            const std::size_t qh = h0 * group + i;
            const std::size_t h = qh / group;
            auto& st = stats_[i];
            st.reset(n, first_row, windows, sources);
            causal_attention({q.data() + qh * d, hq * d}, {k.data() + h * d, hkv * d},
                             {v.data() + h * d, hkv * d}, out.data() + qh * d, hq * d, n,
                             g.head_dim, scale(), rows_[slot],
                             [&](std::int32_t r, std::span<const float> p) {
                               st.accumulate_row(r, p);
                             });
          }
        });
        const auto t1 = clock::now();
        if constexpr (layer_wide) {
          profile_layer(seq, layer, classes, k, v);
        } else {
          for (std::size_t j = 0; j < heads; ++j) {
            const head_id id{seq, layer, static_cast<std::int32_t>(h0 + j)};
            const auto stats = std::span<const head_stats>(stats_).subspan(j * group, group);
            compress(id, classes, k, v,
                     planner_.plan(ladder_, profiler_, stats, opt_.group, classes, opt_.n_sinks,
                                   context(id, n)));
          }
        }
        const auto t2 = clock::now();
        prefill_seconds_ += seconds(t1 - t0);
        profile_seconds_ += seconds(t2 - t1);
      }
    } catch (...) {
      reset_layer(seq, layer);
      throw;
    }
    ls.length = n;
    ls.prompt_length = n;
  }

  /// One generation step for one (sequence, layer). q, out: [n_head_q, head_dim];
  /// k, v: [n_head_kv, head_dim] post-RoPE at position length(seq, layer); cls: the new token's
  /// class. Throws: errc::out_of_range (seq, layer; the step would pass geometry.max_context),
  /// errc::shape_mismatch (each tensor against the geometry), errc::invalid_argument (a NaN or
  /// infinity under cache_options::reject_non_finite), errc::bad_state (decode before prefill),
  /// errc::out_of_memory (checked before anything changes). Argument errors cite `where`.
  void decode(std::int32_t seq, std::int32_t layer, tensor_view<const float, 2> q,
              tensor_view<const float, 2> k, tensor_view<const float, 2> v, token_class cls,
              tensor_view<float, 2> out,
              std::source_location where = std::source_location::current()) {
    detail::expect_decode_shapes(q, k, v, out, opt_.n_head_q, store_.geometry(), where);
    const std::int32_t seqs[1] = {seq};
    expect_steppable(layer, seqs, where);
    expect_finite_inputs("decode", q, k, v, where);
    expect_pages(layer, seqs);
    step(seq, layer, q.data(), k.data(), v.data(), cls, out.data());
  }

  /// One generation step of a batch of B distinct, prefilled sequences at one layer, the device
  /// cache's batched call: row b of q, out [B, n_head_q, head_dim] and k, v [B, n_head_kv,
  /// head_dim] belongs to seqs[b], whose new token has class cls[b]. The same as B single decodes
  /// in order, except that every check (the pool's capacity included) is made before any
  /// sequence changes: a batch either steps whole or throws with nothing changed. Throws as
  /// decode above, and errc::invalid_argument for an empty batch or a sequence listed twice,
  /// errc::shape_mismatch when B differs between seqs, cls and the tensors.
  void decode(std::int32_t layer, std::span<const std::int32_t> seqs,
              tensor_view<const float, 3> q, tensor_view<const float, 3> k,
              tensor_view<const float, 3> v, std::span<const token_class> cls,
              tensor_view<float, 3> out,
              std::source_location where = std::source_location::current()) {
    const auto& g = store_.geometry();
    const auto hq = static_cast<std::size_t>(opt_.n_head_q);
    const auto hkv = static_cast<std::size_t>(g.n_head_kv);
    const auto d = static_cast<std::size_t>(g.head_dim);
    const auto nb = detail::decode_batch(seqs, q, k, v, cls, out, opt_.n_head_q, g, where);
    expect_steppable(layer, seqs, where);
    expect_finite_inputs("decode", q, k, v, where);
    expect_pages(layer, seqs);
    for (std::size_t b = 0; b < nb; ++b) {
      step(seqs[b], layer, q.data() + b * hq * d, k.data() + b * hkv * d,
           v.data() + b * hkv * d, cls[b], out.data() + b * hq * d);
    }
  }

  /// Frees every page of sequence `seq` and forgets its state; it can be prefilled again.
  /// Throws errc::out_of_range for a bad `seq`, citing `where` (the caller).
  void release(std::int32_t seq, std::source_location where = std::source_location::current()) {
    for (std::int32_t l = 0; l < store_.geometry().n_layer; ++l) {
      layer_state(seq, l, where); // range check
      reset_layer(seq, l);
    }
  }

  /// Tokens seen by (seq, layer): 0 before prefill.
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
    return heads_[store_.index(h)].algo.budget;
  }
  [[nodiscard]] auto store() const noexcept -> const Store& { return store_; }
  [[nodiscard]] auto ladder() const noexcept -> const Ladder& { return ladder_; }
  [[nodiscard]] auto options() const noexcept -> const cache_options& { return opt_; }
  [[nodiscard]] auto group_size() const noexcept -> std::int32_t { return group_; }

  /// Choices, memory and timings of every prefilled (sequence, layer).
  [[nodiscard]] auto report() const -> cache_report {
    return detail::make_report<Ladder>(
        store_, std::span<const layer_entry>(layers_),
        [&](std::size_t i) -> const head_entry& { return heads_[i]; },
        [&](head_id id, std::size_t /*index*/) { return store_.size(id); }, prefill_seconds_,
        profile_seconds_);
  }

  /// The device cache's deferred-error calls; the host cache raises every error at the call that
  /// caused it, so there is nothing to wait for or to clear.
  void synchronize() const noexcept {}
  void clear_error() noexcept {}

private:
  using clock = std::chrono::steady_clock;
  static constexpr bool layer_wide = layer_profiler<Profiler>;

  using layer_entry = detail::layer_entry;
  struct head_entry : detail::head_summary<Ladder::size> {
    step_state algo; ///< Algorithm 2's window, budget and recent slots
  };

  /// Threads available to the attention loops (1 without a pool).
  [[nodiscard]] auto threads() const -> std::size_t {
    return opt_.threads == nullptr ? 1 : opt_.threads->size();
  }

  /// fn(begin, end, slot) over [0, n) on the pool when `workers` > 1, else inline.
  template <class Fn>
  void run(std::size_t workers, std::size_t n, Fn&& fn) {
    if (workers > 1) {
      opt_.threads->parallel_for(n, 1, fn);
    } else {
      serial{}.parallel_for(n, 1, fn);
    }
  }

  static auto seconds(clock::duration d) -> double {
    return std::chrono::duration<double>(d).count();
  }

  [[nodiscard]] auto scale() const -> float { return logit_scale(opt_, store_.geometry()); }

  [[nodiscard]] auto layer_index(std::int32_t seq, std::int32_t layer,
                                 std::source_location where = std::source_location::current())
      const -> std::size_t {
    return layer_slot(store_.geometry(), seq, layer, where);
  }
  auto layer_state(std::int32_t seq, std::int32_t layer, std::source_location where)
      -> layer_entry& {
    return layers_[layer_index(seq, layer, where)];
  }

  void reset_layer(std::int32_t seq, std::int32_t layer) {
    for (std::int32_t h = 0; h < store_.geometry().n_head_kv; ++h) {
      const head_id id{seq, layer, h};
      store_.clear(id);
      heads_[store_.index(id)] = head_entry{};
    }
    layers_[layer_index(seq, layer)] = layer_entry{};
  }

  [[nodiscard]] auto context(head_id id, std::int32_t length) const -> head_context {
    const auto& g = store_.geometry();
    return {id.seq, id.layer, id.head, g.n_layer, g.n_head_kv, length};
  }

  // The checks of a decode step of `seqs` at `layer` that need no tensor (cache_state.hpp).
  void expect_steppable(std::int32_t layer, std::span<const std::int32_t> seqs,
                        std::source_location where) {
    detail::expect_steppable(
        store_.geometry(), layer, seqs,
        [&](std::int32_t seq) -> const layer_entry& { return layer_state(seq, layer, where); },
        INT64_MAX, where);
  }

  // cache_options::reject_non_finite: q, k and v hold no NaN or infinity.
  template <class View>
  void expect_finite_inputs(std::string_view call, const View& q, const View& k, const View& v,
                            std::source_location where) const {
    if (opt_.reject_non_finite) {
      q.expect_finite(fmt::format("{} q", call), where);
      k.expect_finite(fmt::format("{} k", call), where);
      v.expect_finite(fmt::format("{} v", call), where);
    }
  }

  // The pool must hold one more token of every head of `seqs` before anything changes.
  void expect_pages(std::int32_t layer, std::span<const std::int32_t> seqs) {
    std::size_t pages = 0;
    for (const std::int32_t seq : seqs) {
      for (std::int32_t h = 0; h < store_.geometry().n_head_kv; ++h) {
        pages += store_.pages_to_append({seq, layer, h});
      }
    }
    expects(store_.can_allocate(pages), errc::out_of_memory, [&] {
      return seqs.size() == 1
                 ? fmt::format("page pool cannot hold one more token for sequence {} layer {}",
                               seqs[0], layer)
                 : fmt::format("page pool cannot hold one more token for each of the {} "
                               "sequences of the batch at layer {}",
                               seqs.size(), layer);
    });
  }

  // One checked step of one sequence: q, out [n_head_q, head_dim]; k, v [n_head_kv, head_dim].
  void step(std::int32_t seq, std::int32_t layer, const float* q, const float* k, const float* v,
            token_class cls, float* out) {
    auto& ls = layers_[layer_index(seq, layer)];
    const auto& g = store_.geometry();
    const auto hkv = static_cast<std::size_t>(g.n_head_kv);
    const auto d = static_cast<std::size_t>(g.head_dim);
    if (opt_.generated == generated_class_mode::frozen) {
      cls = token_class::none;
    }
    const step_context ctx{ls.length + 1, ls.prompt_length};
    // Three passes over the KV heads: append (store and policy state, serial), attention (each
    // head alone: parallel when the layer has enough of it), scores and eviction (serial).
    double macs = 0.0;
    for (std::int32_t h = 0; h < g.n_head_kv; ++h) {
      const head_id id{seq, layer, h};
      auto& hs = heads_[store_.index(id)];
      ladder_.visit(hs.choice, [&](const auto& pol) {
        steps_[static_cast<std::size_t>(h)] = begin_step(pol, hs, id, k, v, cls, ctx);
      });
      macs += 2.0 * static_cast<double>(store_.size(id)) * static_cast<double>(d * group_);
    }
    const std::size_t workers = macs >= parallel_min_macs ? threads() : 1;
    run(workers, hkv, [&](std::size_t b, std::size_t e, std::size_t slot) {
      for (std::size_t h = b; h < e; ++h) {
        const head_id id{seq, layer, static_cast<std::int32_t>(h)};
        auto& probs = probs_[h];
        probs.resize(static_cast<std::size_t>(store_.size(id)));
        const auto qh = h * static_cast<std::size_t>(group_);
        attend_paged(store_, id, q + qh * d, out + qh * d, group_, scale(), opt_.group,
                     decode_scratch_[slot], std::span(probs));
      }
    });
    std::int64_t kept = 0;
    for (std::int32_t h = 0; h < g.n_head_kv; ++h) {
      const head_id id{seq, layer, h};
      auto& hs = heads_[store_.index(id)];
      ladder_.visit(hs.choice, [&](const auto& pol) {
        finish_step(pol, hs, id, steps_[static_cast<std::size_t>(h)],
                    probs_[static_cast<std::size_t>(h)], ctx);
      });
      kept += store_.size(id);
    }
    ls.length = ctx.length;
    ls.kept_fraction_sum += static_cast<double>(kept) /
                            (static_cast<double>(ctx.length) * static_cast<double>(g.n_head_kv));
    ++ls.decode_steps;
  }

  // A layer-wide profiler: every KV head measured (stats_ holds the whole layer), one choice for
  // the layer, then each head compressed.
  void profile_layer(std::int32_t seq, std::int32_t layer, std::span<const token_class> classes,
                     tensor_view<const float, 3> k, tensor_view<const float, 3> v) {
    const auto hkv = static_cast<std::size_t>(store_.geometry().n_head_kv);
    const auto group = static_cast<std::size_t>(group_);
    const auto n = static_cast<std::int32_t>(classes.size());
    layer_candidates_.resize(hkv);
    layer_choices_.assign(hkv, head_choice{});
    for (std::size_t h = 0; h < hkv; ++h) {
      const head_id id{seq, layer, static_cast<std::int32_t>(h)};
      planner_.measure(ladder_, std::span<const head_stats>(stats_).subspan(h * group, group),
                       opt_.group, classes, opt_.n_sinks, context(id, n), layer_candidates_[h]);
    }
    profiler_.choose_layer(std::span<const candidate_scores>(layer_candidates_),
                           std::span<head_choice>(layer_choices_));
    for (std::size_t h = 0; h < hkv; ++h) {
      const head_id id{seq, layer, static_cast<std::int32_t>(h)};
      compress(id, classes, k, v,
               planner_.finish(ladder_, layer_choices_[h],
                               std::span<const head_stats>(stats_).subspan(h * group, group),
                               opt_.group, classes, opt_.n_sinks,
                               layer_candidates_[h].recovered));
    }
  }

  // Writes the tokens a plan keeps (FastGen Algorithm 1's last step) and the head's state.
  void compress(head_id id, std::span<const token_class> classes, tensor_view<const float, 3> k,
                tensor_view<const float, 3> v, const head_plan& plan) {
    auto& hs = heads_[store_.index(id)];
    hs = head_entry{};
    hs.set(plan);
    detail::compress_plan(hs.algo, plan.reasons, plan.window_begin, plan.budget,
                          [&](std::int32_t j) {
                            const auto row = static_cast<std::size_t>(j);
                            return store_.append(id, {k.row(row, id.head), k.extent(2)},
                                                 {v.row(row, id.head), v.extent(2)},
                                                 {j, static_cast<float>(plan.scores[row]),
                                                  classes[row], plan.reasons[row]});
                          });
  }

  // FastGen Algorithm 2 for one KV head under policy `pol` (fastgen-spec §2; the algorithm is
  // cache/step_algorithm.hpp, shared with head_stepper), before attention: the policy's rule,
  // window and budget for this step, and the new token appended (or dropped).
  template <policy P>
  auto begin_step(const P& pol, const head_entry& hs, head_id id, const float* k,
                  const float* v, token_class cls, step_context ctx) -> step_decision {
    step_decision st = detail::decide_step(pol, hs.algo, cls, ctx, opt_.n_sinks, opt_.new_token,
                                           store_.size(id));
    if (st.append) {
      const auto d = static_cast<std::size_t>(store_.geometry().head_dim);
      const auto h = static_cast<std::size_t>(id.head);
      st.new_slot = store_.append(id, {k + h * d, d}, {v + h * d, d},
                                  {ctx.length - 1, 0.0F, cls, keep_reason::evicted});
    }
    return st;
  }

  // ... and after attention: scores, the window's and the new token's fate, budget eviction.
  template <policy P>
  void finish_step(const P& pol, head_entry& hs, head_id id, const step_decision& st,
                   std::span<const float> probs, step_context ctx) {
    detail::store_slots<Store> slots{&store_, id};
    detail::finish_step(pol, hs.algo, slots, st, probs, ctx, step_scratch_);
  }

  Ladder ladder_;
  Profiler profiler_;
  Store store_;
  cache_options opt_;
  std::int32_t group_;
  std::vector<layer_entry> layers_;
  std::vector<head_entry> heads_;
  std::vector<head_stats> stats_; // [KV heads in a prefill batch * group]
  std::vector<step_decision> steps_; // [n_head_kv]: the decode step between its passes
  // Scratch, reused so that steady-state decode allocates nothing.
  std::vector<std::vector<float>> probs_; // [n_head_kv][resident]: the group's probabilities
  head_planner planner_;
  std::vector<std::vector<float>> rows_;  // [threads]: causal_attention's row
  detail::step_scratch step_scratch_;
  std::vector<candidate_scores> layer_candidates_; // [n_head_kv]: a layer-wide profiler's input
  std::vector<head_choice> layer_choices_;         // [n_head_kv]: ... and its answer
  std::vector<decode_scratch> decode_scratch_; // [threads]
  double prefill_seconds_ = 0.0;
  double profile_seconds_ = 0.0;
};

template <candidate_ladder Ladder, profiler Profiler>
adaptive_cache(Ladder, Profiler, const store_geometry&, cache_options = {})
    -> adaptive_cache<Ladder, Profiler>;

// The store adapter of Algorithm 2 (cache/step_algorithm.hpp) models its slot table.
static_assert(slot_table<detail::store_slots<paged_store<float>>>);

} // namespace kvsieve
