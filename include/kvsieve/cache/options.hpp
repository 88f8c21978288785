// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Runtime settings of adaptive_cache and its report. Each DEFAULT/OPTION of fastgen-spec §6 that
/// is not a policy parameter lives here (the policy ones are in fastgen_params).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <source_location>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/group.hpp>
#include <kvsieve/core/parallel.hpp>
#include <kvsieve/store/concepts.hpp>

namespace kvsieve {

/// fastgen-spec §6 item 6: what a head does with a new token its policy will not keep.
enum class new_token_mode {
  attend_then_decide,   ///< DEFAULT: it attends to itself at its own step, then leaves
  drop_before_attention ///< OPTION (cold-compress): dropped before attention when the head has
                        ///< no window and no budget and its rule rejects the token
};

/// fastgen-spec §6 item 7: the classes of generated tokens.
enum class generated_class_mode {
  classify, ///< DEFAULT: as passed to decode(); special/punct members keep them
  frozen,   ///< OPTION: classes are frozen at prefill; generated tokens count as class none
};

struct cache_options {
  std::int32_t n_head_q = 0;       ///< query heads per layer; 0 = n_head_kv; a multiple of it
  float scale = 0.0F;              ///< logit scale; 0 = 1 / sqrt(head_dim)
  std::int32_t n_sinks = 0;        ///< §6.5: first n tokens kept by every candidate (OPTION: 4)
  std::int32_t recovery_rows = 0;  ///< §6.1: 0 = all prompt rows (DEFAULT); k = the last k rows
  group_reduce group = group_reduce::mean;                   ///< §6.9
  new_token_mode new_token = new_token_mode::attend_then_decide; ///< §6.6
  generated_class_mode generated = generated_class_mode::classify; ///< §6.7
  /// Threads for the host cache's attention: prefill splits its query heads over them, decode its
  /// KV heads (only when a layer has enough work; see adaptive_cache). nullptr: the calling
  /// thread alone. Results do not depend on the thread count (each head's sums run on one
  /// thread, in one order). Borrowed: the pool must outlive the calls. The CUDA cache ignores it.
  thread_pool* threads = nullptr;
  /// Host cache: prefill and decode check every element of q, k and v and throw
  /// errc::invalid_argument naming the tensor and the index of the first NaN or infinity (one
  /// more pass over the inputs; off by default, so the hot path reads each input once). Without
  /// it a non-finite input propagates into the outputs and the scores. The CUDA cache ignores it.
  bool reject_non_finite = false;
};

/// The options with their defaults filled in (n_head_q 0 -> n_head_kv), as every cache stores
/// them. Throws errc::invalid_argument when n_head_q is not a positive multiple of n_head_kv,
/// n_sinks or recovery_rows is negative, or the scale is negative or not finite.
/// `where` is the caller's location, reported in the message.
[[nodiscard]] inline auto validated(cache_options o, const store_geometry& g,
                                    std::source_location where = std::source_location::current())
    -> cache_options {
  if (o.n_head_q == 0) {
    o.n_head_q = g.n_head_kv;
  }
  expects(g.n_head_kv > 0 && o.n_head_q > 0 && o.n_head_q % g.n_head_kv == 0,
          errc::invalid_argument, [&] {
            return fmt::format("n_head_q ({}) must be a positive multiple of n_head_kv ({})",
                               o.n_head_q, g.n_head_kv);
          },
          where);
  expects(o.n_sinks >= 0, errc::invalid_argument, "n_sinks must be >= 0", where);
  expects(o.recovery_rows >= 0, errc::invalid_argument, "recovery_rows must be >= 0", where);
  expects(std::isfinite(o.scale) && o.scale >= 0.0F, errc::invalid_argument,
          "scale must be finite and >= 0 (0 selects 1/sqrt(head_dim))", where);
  return o;
}

/// The attention logit scale: options.scale, or 1 / sqrt(head_dim) when it is 0.
[[nodiscard]] inline auto logit_scale(const cache_options& o, const store_geometry& g) -> float {
  return o.scale > 0.0F ? o.scale : 1.0F / std::sqrt(static_cast<float>(g.head_dim));
}

/// The flat index of (sequence, layer). Throws errc::out_of_range for either outside g, citing
/// `where` (the caller of the public entry point).
[[nodiscard]] inline auto layer_slot(const store_geometry& g, std::int32_t seq,
                                     std::int32_t layer,
                                     std::source_location where = std::source_location::current())
    -> std::size_t {
  expects(seq >= 0 && seq < g.n_seq, errc::out_of_range,
          [&] { return fmt::format("sequence index {} outside [0, {})", seq, g.n_seq); }, where);
  expects(layer >= 0 && layer < g.n_layer, errc::out_of_range,
          [&] { return fmt::format("layer index {} outside [0, {})", layer, g.n_layer); }, where);
  return static_cast<std::size_t>(seq) * static_cast<std::size_t>(g.n_layer) +
         static_cast<std::size_t>(layer);
}

/// One KV head in the report.
struct head_report {
  head_id head;
  std::int32_t choice = 0;     ///< index into the ladder
  std::string_view policy;     ///< the chosen candidate's name
  std::int32_t kept = 0;       ///< resident tokens
  std::int32_t length = 0;     ///< tokens seen (prompt + generated)
  double recovered = 1.0;      ///< recovered prompt attention of the chosen candidate
  /// Recovered prompt attention of every ladder candidate, in ladder order (what the profiler
  /// compared; the stability study re-measures it on generated rows).
  std::vector<double> candidates;
  /// The head's budget at the end of prefill in tokens (-1: the chosen candidate has none); with
  /// a fixed budget from the profiler (Ada-KV, PyramidKV), that budget for the whole sequence.
  std::int32_t budget = -1;
  bool fixed_budget = false; ///< the profiler set `budget` for this head
  /// "name" or "name[k=budget]" (with "!" for a budget the profiler fixed), for reports.
  [[nodiscard]] auto label() const -> std::string {
    if (budget < 0) {
      return std::string(policy);
    }
    return fmt::format("{}[k={}{}]", policy, budget, fixed_budget ? "!" : "");
  }
};

/// Memory and choices of every prefilled (sequence, layer).
struct cache_report {
  std::vector<head_report> heads;
  /// Ladder names with how many KV heads chose each, in ladder order.
  std::vector<std::pair<std::string_view, std::int32_t>> policy_counts;
  std::size_t bytes_resident = 0; ///< pages in use: K, V, metadata, partial pages (the truth)
  std::size_t bytes_full = 0;     ///< pages the same paged layout would use with no eviction
  std::size_t kv_bytes_kept = 0;  ///< K and V of the resident tokens only
  std::size_t kv_bytes_full = 0;  ///< K and V of every token seen
  double mean_kept_fraction = 1.0; ///< §6.10 OPTION: mean over decode steps of kept / seen
  double prefill_attention_seconds = 0.0; ///< prefill attention, statistics fused in
  double profile_seconds = 0.0;   ///< measuring candidates, choosing, compressing

  /// §6.10 DEFAULT: the share of the full cache's bytes that eviction freed, at the end.
  [[nodiscard]] auto saved_fraction() const noexcept -> double {
    return bytes_full == 0 ? 0.0
                           : 1.0 - static_cast<double>(bytes_resident) /
                                       static_cast<double>(bytes_full);
  }
};

} // namespace kvsieve
