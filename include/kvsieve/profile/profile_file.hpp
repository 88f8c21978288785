// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Head-profile files: a prefilled cache's per-(layer, KV head) choices and budgets, with the
/// ladder's candidate names and the threshold T that produced them, as versioned JSON, and
/// replay_profiler, which gives every KV head its recorded choice whatever the prompt
/// (DuoAttention-style static use: profile once on a calibration prompt, deploy the fixed map).
///   profile_of(cache, T, seq)      the profile of a prefilled sequence
///   save_profile / to_json         write it; load_profile / profile_from_json read it back as
///                                  untrusted input (every problem is errc::io, naming the field
///                                  and the entry)
///   replay_profiler                a per-head profiler returning the recorded head_choice
///   check_compatible(p, ladder, g) the replay's checks, at cache construction time
/// What replay does not skip: adaptive_cache still measures every candidate on the prompt before
/// it asks the profiler (it has no path without measurement), so replay makes the choices
/// independent of the prompt, not the prefill cheaper. Skipping the measurement is future work.
/// The file names candidates, not their parameters (r_l, r_f, budgets): replayed on a ladder of
/// the same names with other parameters, the choices are the same and the kept sets differ.
/// Needs nlohmann_json 3, which kvsieve::kvsieve links. Not in the kvsieve.hpp umbrella (the
/// JSON parser is slow to compile): include it where it is used.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <source_location>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>
#include <kvsieve/policy/ladder.hpp>
#include <kvsieve/profile/detail/profile_json.hpp>
#include <kvsieve/profile/concepts.hpp>
#include <kvsieve/store/concepts.hpp>

namespace kvsieve {

/// One KV head's entry in a head_profile.
struct profiled_head {
  std::int32_t layer = 0;
  std::int32_t kv_head = 0;
  std::size_t choice = 0;         ///< index into head_profile::ladder
  std::string policy;             ///< ladder[choice], so that the file reads on its own
  std::int32_t budget = -1;       ///< the budget the profiler fixed; -1: the candidate's own
  std::int32_t prompt_length = 0; ///< tokens of the prompt the head was measured on
  double recovered = 1.0;         ///< the choice's recovered attention on that prompt
  friend auto operator==(const profiled_head&, const profiled_head&) -> bool = default;
};

/// Every KV head's choice for one model and ladder.
struct head_profile {
  static constexpr std::string_view format = "kvsieve-head-profile";
  static constexpr std::int64_t version = 1;

  std::vector<std::string> ladder; ///< candidate names, in ladder order
  /// The T that produced the choices; NaN when the profiler has none (written as null).
  double threshold = std::numeric_limits<double>::quiet_NaN();
  std::int32_t n_layer = 0;
  std::int32_t n_head_kv = 0;
  std::vector<profiled_head> heads; ///< [n_layer * n_head_kv], layer-major
  std::string model;                ///< free-form; empty: none (the key is then left out)

  /// The entry of (layer, kv_head). Throws errc::out_of_range outside the geometry.
  [[nodiscard]] auto at(std::int32_t layer, std::int32_t kv_head) const -> const profiled_head& {
    expects(layer >= 0 && layer < n_layer && kv_head >= 0 && kv_head < n_head_kv &&
                heads.size() == static_cast<std::size_t>(n_layer) *
                                    static_cast<std::size_t>(n_head_kv),
            errc::out_of_range, [&] {
              return fmt::format("head profile: no entry for layer {} kv_head {} in {} x {}",
                                 layer, kv_head, n_layer, n_head_kv);
            });
    return heads[static_cast<std::size_t>(layer) * static_cast<std::size_t>(n_head_kv) +
                 static_cast<std::size_t>(kv_head)];
  }

  /// Equal contents; two NaN thresholds (no T) are equal.
  friend auto operator==(const head_profile& a, const head_profile& b) -> bool {
    const bool same_t = a.threshold == b.threshold ||
                        (std::isnan(a.threshold) && std::isnan(b.threshold));
    return same_t && a.ladder == b.ladder && a.n_layer == b.n_layer &&
           a.n_head_kv == b.n_head_kv && a.heads == b.heads && a.model == b.model;
  }
};

namespace detail::profile_file {

inline constexpr std::size_t max_ladder = 255; // ladder<C...>: a choice fits in one byte
// Sums of float probabilities can pass 1 by rounding.
inline constexpr double recovered_slack = 1e-3;

/// "heads[i] (layer l, kv_head h)".
[[nodiscard]] inline auto entry_label(std::size_t i, const profiled_head& e) -> std::string {
  return fmt::format("heads[{}] (layer {}, kv_head {})", i, e.layer, e.kv_head);
}

/// What is wrong with one entry against the profile's ladder; empty when nothing.
[[nodiscard]] inline auto entry_problem(const head_profile& p, const profiled_head& e)
    -> std::string {
  if (e.choice >= p.ladder.size()) {
    return fmt::format("'choice' {} is past the ladder's {} candidates", e.choice,
                       p.ladder.size());
  }
  if (e.policy != p.ladder[e.choice]) {
    return fmt::format("'policy' {} is not ladder[{}] {}", shown(e.policy), e.choice,
                       shown(p.ladder[e.choice]));
  }
  if (e.budget < -1) {
    return fmt::format("'budget' {} is below -1 (-1: the candidate's own)", e.budget);
  }
  if (e.prompt_length < 1) {
    return fmt::format("'prompt_length' {} is below 1", e.prompt_length);
  }
  if (!(e.recovered >= 0.0 && e.recovered <= 1.0 + recovered_slack)) {
    return fmt::format("'recovered' {} is outside [0, 1]", e.recovered);
  }
  return {};
}

/// What is wrong with the profile's header fields (ladder, threshold, geometry); empty when
/// nothing.
[[nodiscard]] inline auto header_problem(const head_profile& p) -> std::string {
  if (p.ladder.empty() || p.ladder.size() > max_ladder) {
    return fmt::format("'ladder' has {} candidates, not 1 to {}", p.ladder.size(), max_ladder);
  }
  for (std::size_t i = 0; i < p.ladder.size(); ++i) {
    if (p.ladder[i].empty()) {
      return fmt::format("'ladder'[{}] is an empty name", i);
    }
  }
  if (std::isinf(p.threshold)) {
    return "'threshold' is infinite (NaN or null: none)";
  }
  if (p.n_layer < 1 || p.n_head_kv < 1) {
    return fmt::format("'n_layer' {} and 'n_head_kv' {} must be >= 1", p.n_layer, p.n_head_kv);
  }
  return {};
}

/// The first problem of an in-memory profile; empty when it is consistent.
[[nodiscard]] inline auto profile_problem(const head_profile& p) -> std::string {
  if (auto h = header_problem(p); !h.empty()) {
    return h;
  }
  const auto expected = static_cast<std::size_t>(p.n_layer) * static_cast<std::size_t>(p.n_head_kv);
  if (p.heads.size() != expected) {
    return fmt::format("{} entries in 'heads', not n_layer x n_head_kv = {}", p.heads.size(),
                       expected);
  }
  for (std::size_t i = 0; i < p.heads.size(); ++i) {
    const auto& e = p.heads[i];
    const auto layer = static_cast<std::int32_t>(i / static_cast<std::size_t>(p.n_head_kv));
    const auto head = static_cast<std::int32_t>(i % static_cast<std::size_t>(p.n_head_kv));
    if (e.layer != layer || e.kv_head != head) {
      return fmt::format("{}: out of place, expected layer {}, kv_head {} (layer-major order)",
                         entry_label(i, e), layer, head);
    }
    if (auto problem = entry_problem(p, e); !problem.empty()) {
      return fmt::format("{}: {}", entry_label(i, e), problem);
    }
  }
  return {};
}

} // namespace detail::profile_file

/// Throws errc::invalid_argument naming the first inconsistency of an in-memory profile (as
/// load_profile would reject it): ladder size, geometry, entry count, order or fields.
inline void validate(const head_profile& p,
                     std::source_location where = std::source_location::current()) {
  const auto problem = detail::profile_file::profile_problem(p);
  expects(problem.empty(), errc::invalid_argument,
          [&] { return fmt::format("head profile: {}", problem); }, where);
}

/// The profile as JSON (keys in the order they are written). Throws as validate().
[[nodiscard]] inline auto to_json(const head_profile& p) -> nlohmann::ordered_json {
  validate(p);
  nlohmann::ordered_json j;
  j["format"] = head_profile::format;
  j["version"] = head_profile::version;
  if (!p.model.empty()) {
    j["model"] = p.model;
  }
  j["threshold"] =
      std::isnan(p.threshold) ? nlohmann::ordered_json() : nlohmann::ordered_json(p.threshold);
  j["ladder"] = p.ladder;
  j["n_layer"] = p.n_layer;
  j["n_head_kv"] = p.n_head_kv;
  auto& heads = j["heads"] = nlohmann::ordered_json::array();
  for (const auto& e : p.heads) {
    heads.push_back({{"layer", e.layer},
                     {"kv_head", e.kv_head},
                     {"choice", e.choice},
                     {"policy", e.policy},
                     {"budget", e.budget},
                     {"prompt_length", e.prompt_length},
                     {"recovered", e.recovered}});
  }
  return j;
}

/// Writes the profile: two-space indentation, one line per head. Invalid UTF-8 in a string
/// becomes U+FFFD. Throws as validate(), errc::io when the stream fails.
inline void save_profile(const head_profile& p, std::ostream& os) {
  const auto j = to_json(p);
  const auto dump = [](const auto& v) {
    return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  };
  os << "{\n";
  bool first = true;
  for (const auto& [key, value] : j.items()) {
    os << (first ? "" : ",\n") << "  " << dump(nlohmann::ordered_json(key)) << ": ";
    first = false;
    if (key != "heads") {
      os << dump(value);
      continue;
    }
    os << "[\n";
    for (std::size_t i = 0; i < value.size(); ++i) {
      os << "    " << dump(value[i]) << (i + 1 < value.size() ? ",\n" : "\n");
    }
    os << "  ]";
  }
  os << "\n}\n";
  expects(os.good(), errc::io, "head profile: the stream failed while writing");
}

/// The profile of a parsed JSON value (untrusted). Unknown keys are ignored. Throws errc::io
/// "<source>: <entry>: <problem>" for a missing or mistyped field, a number out of range, a
/// wrong format or version, a choice past the ladder or whose 'policy' is not ladder[choice], a
/// budget below -1, a (layer, kv_head) outside the geometry, repeated or without an entry.
[[nodiscard]] inline auto profile_from_json(const nlohmann::json& j,
                                            std::string_view source = "head profile")
    -> head_profile {
  namespace d = detail::profile_file;
  const auto root = fmt::format("{}: ", source);
  if (!j.is_object()) {
    d::fail(fmt::format("{}the root must be an object, not {}", root, j.type_name()));
  }
  if (const auto f = d::string(j, "format", root); f != head_profile::format) {
    d::fail(fmt::format("{}'format' is {}, not \"{}\"", root, d::shown(f), head_profile::format));
  }
  const auto v = d::integer(j, "version", root, 0, std::numeric_limits<std::int64_t>::max());
  if (v != head_profile::version) {
    d::fail(fmt::format("{}'version' {} is not {}, the one this reader knows", root, v,
                        head_profile::version));
  }
  head_profile p;
  if (j.contains("model")) {
    p.model = d::string(j, "model", root);
  }
  if (const auto it = j.find("threshold"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) {
      d::fail(fmt::format("{}field 'threshold' must be a number or null, not {}", root,
                          it->type_name()));
    }
    p.threshold = it->get<double>();
  }
  const auto& ladder = d::field(j, "ladder", root);
  if (!ladder.is_array()) {
    d::fail(fmt::format("{}field 'ladder' must be an array of names, not {}", root,
                        ladder.type_name()));
  }
  if (ladder.empty() || ladder.size() > d::max_ladder) {
    d::fail(fmt::format("{}'ladder' has {} candidates, not 1 to {}", root, ladder.size(),
                        d::max_ladder));
  }
  for (std::size_t i = 0; i < ladder.size(); ++i) {
    if (!ladder[i].is_string()) {
      d::fail(fmt::format("{}'ladder'[{}] must be a string, not {}", root, i,
                          ladder[i].type_name()));
    }
    p.ladder.push_back(ladder[i].get<std::string>());
  }
  p.n_layer = d::int32(j, "n_layer", root, 1);
  p.n_head_kv = d::int32(j, "n_head_kv", root, 1);
  if (auto problem = d::header_problem(p); !problem.empty()) {
    d::fail(root + problem);
  }
  const auto& heads = d::field(j, "heads", root);
  if (!heads.is_array()) {
    d::fail(fmt::format("{}field 'heads' must be an array, not {}", root, heads.type_name()));
  }
  // Placed by (layer, kv_head) in a map: the geometry may be huge while the file is short.
  const auto expected = static_cast<std::size_t>(p.n_layer) * static_cast<std::size_t>(p.n_head_kv);
  if (heads.size() > expected) {
    d::fail(fmt::format("{}{} entries in 'heads', more than n_layer x n_head_kv = {}", root,
                        heads.size(), expected));
  }
  std::map<std::size_t, std::pair<profiled_head, std::size_t>> placed; // flat index -> entry, i
  for (std::size_t i = 0; i < heads.size(); ++i) {
    const auto& h = heads[i];
    const auto at = fmt::format("{}heads[{}]: ", root, i);
    if (!h.is_object()) {
      d::fail(fmt::format("{}must be an object, not {}", at, h.type_name()));
    }
    profiled_head e;
    e.layer = static_cast<std::int32_t>(d::integer(h, "layer", at, 0, p.n_layer - 1));
    e.kv_head = static_cast<std::int32_t>(d::integer(h, "kv_head", at, 0, p.n_head_kv - 1));
    const auto label = fmt::format("{}{}: ", root, d::entry_label(i, e));
    e.choice = static_cast<std::size_t>(
        d::integer(h, "choice", label, 0, static_cast<std::int64_t>(p.ladder.size()) - 1));
    e.policy = d::string(h, "policy", label);
    e.budget = static_cast<std::int32_t>(
        d::integer(h, "budget", label, -1, std::numeric_limits<std::int32_t>::max()));
    e.prompt_length = d::int32(h, "prompt_length", label, 1);
    const auto& r = d::field(h, "recovered", label);
    if (!r.is_number()) {
      d::fail(fmt::format("{}field 'recovered' must be a number, not {}", label, r.type_name()));
    }
    e.recovered = r.get<double>();
    if (auto problem = d::entry_problem(p, e); !problem.empty()) {
      d::fail(label + problem);
    }
    const auto flat = static_cast<std::size_t>(e.layer) * static_cast<std::size_t>(p.n_head_kv) +
                      static_cast<std::size_t>(e.kv_head);
    const auto [it, fresh] = placed.try_emplace(flat, e, i);
    if (!fresh) {
      d::fail(fmt::format("{}repeats heads[{}]", label, it->second.second));
    }
  }
  std::size_t next = 0; // the first (layer, kv_head) without an entry
  for (const auto& entry : placed) {
    if (entry.first != next) {
      break;
    }
    ++next;
  }
  if (next < expected) {
    d::fail(fmt::format("{}'heads' has no entry for layer {}, kv_head {}", root,
                        next / static_cast<std::size_t>(p.n_head_kv),
                        next % static_cast<std::size_t>(p.n_head_kv)));
  }
  p.heads.reserve(expected);
  for (auto& entry : placed) {
    p.heads.push_back(std::move(entry.second.first));
  }
  return p;
}

/// Reads a profile from a stream of at most 64 MiB. Throws errc::io as profile_from_json, and
/// for text that is not JSON (with the parser's complaint), nested deeper than 16 levels, with a
/// repeated key in an object, or too long; errc::out_of_memory when it does not fit.
[[nodiscard]] inline auto load_profile(std::istream& is, std::string_view source = "head profile")
    -> head_profile {
  namespace d = detail::profile_file;
  return profile_from_json(d::parse(d::read_all(is, source), source), source);
}

/// load_profile from a file; every message starts with "head profile <file>".
[[nodiscard]] inline auto load_profile(const std::filesystem::path& file) -> head_profile {
  const auto source = fmt::format("head profile {}", file.string());
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  expects(std::filesystem::is_regular_file(status), errc::io, [&] {
    return fmt::format("{}: {}", source,
                       std::filesystem::exists(status) ? "not a regular file" : "cannot open");
  });
  std::ifstream in(file, std::ios::binary);
  expects(in.is_open(), errc::io, [&] { return fmt::format("{}: cannot open", source); });
  return load_profile(in, source);
}

/// save_profile to a file, replacing it. Throws errc::io when it cannot be written.
inline void save_profile(const head_profile& p, const std::filesystem::path& file) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  expects(out.is_open(), errc::io, [&] {
    return fmt::format("head profile {}: cannot open for writing", file.string());
  });
  save_profile(p, out);
  out.close();
  expects(!out.fail(), errc::io,
          [&] { return fmt::format("head profile {}: write failed", file.string()); });
}

/// The profile of sequence `seq` of a prefilled cache (adaptive_cache or a cache with its
/// report/choice/fixed_budget/length interface). `threshold`: the T its profiler used, NaN for
/// none. prompt_length records length(seq, layer): call it after prefill and before decode.
/// Throws errc::out_of_range (seq), errc::bad_state naming the first layer of `seq` not
/// prefilled, errc::invalid_argument for an infinite threshold.
template <class Cache>
  requires candidate_ladder<typename Cache::ladder_type>
[[nodiscard]] auto profile_of(const Cache& cache, double threshold, std::int32_t seq = 0,
                              std::source_location where = std::source_location::current())
    -> head_profile {
  using Ladder = typename Cache::ladder_type;
  const auto& g = cache.store().geometry();
  expects(!std::isinf(threshold), errc::invalid_argument,
          "profile_of: threshold must be finite, or NaN for none", where);
  for (std::int32_t l = 0; l < g.n_layer; ++l) {
    expects(cache.length(seq, l, where) > 0, errc::bad_state, [&] {
      return fmt::format("profile_of: sequence {} layer {} is not prefilled (every layer of the "
                         "sequence must be)",
                         seq, l);
    }, where);
  }
  head_profile p;
  for (std::size_t i = 0; i < Ladder::size; ++i) {
    p.ladder.emplace_back(Ladder::name(i));
  }
  p.threshold = threshold;
  p.n_layer = g.n_layer;
  p.n_head_kv = g.n_head_kv;
  p.heads.resize(static_cast<std::size_t>(g.n_layer) * static_cast<std::size_t>(g.n_head_kv));
  for (const auto& h : cache.report().heads) {
    if (h.head.seq != seq) {
      continue;
    }
    const auto flat = static_cast<std::size_t>(h.head.layer) *
                          static_cast<std::size_t>(g.n_head_kv) +
                      static_cast<std::size_t>(h.head.head);
    p.heads[flat] = {h.head.layer,
                     h.head.head,
                     static_cast<std::size_t>(h.choice),
                     std::string(h.policy),
                     cache.fixed_budget(h.head),
                     h.length,
                     h.recovered};
  }
  return p;
}

/// Throws errc::invalid_argument unless `names` is the profile's ladder, name for name, naming
/// the first candidate that differs.
inline void check_compatible(const head_profile& p, std::span<const std::string_view> names,
                             std::source_location where = std::source_location::current()) {
  const std::size_t n = std::max(names.size(), p.ladder.size());
  for (std::size_t i = 0; i < n; ++i) {
    const bool ours = i < names.size();
    const bool theirs = i < p.ladder.size();
    if (ours && theirs && names[i] == p.ladder[i]) {
      continue;
    }
    raise(errc::invalid_argument,
          fmt::format("head profile: the cache's ladder ({} candidates) differs from the file's "
                      "({}) at candidate {}: cache has {}, file has {}",
                      names.size(), p.ladder.size(), i,
                      ours ? detail::profile_file::shown(names[i]) : "none",
                      theirs ? detail::profile_file::shown(p.ladder[i]) : "none"),
          where);
  }
}

/// Throws errc::invalid_argument unless the cache's geometry is the profile's:
/// "the file is for 4 layers x 2 KV heads, the cache has 2 layers x 2 KV heads".
inline void check_compatible(const head_profile& p, std::int32_t n_layer, std::int32_t n_head_kv,
                             std::source_location where = std::source_location::current()) {
  expects(n_layer == p.n_layer && n_head_kv == p.n_head_kv, errc::invalid_argument, [&] {
    return fmt::format("head profile: the file is for {} layers x {} KV heads, the cache has {} "
                       "layers x {} KV heads",
                       p.n_layer, p.n_head_kv, n_layer, n_head_kv);
  }, where);
}

/// Both checks for a cache about to be built from `ladder` and `g`, before any prefill.
template <candidate_ladder Ladder>
void check_compatible(const head_profile& p, const Ladder&, const store_geometry& g,
                      std::source_location where = std::source_location::current()) {
  std::vector<std::string_view> names;
  for (std::size_t i = 0; i < Ladder::size; ++i) {
    names.push_back(Ladder::name(i));
  }
  check_compatible(p, names, where);
  check_compatible(p, g.n_layer, g.n_head_kv, where);
}

/// A per-head profiler that replays a head_profile: KV head (layer, h) gets the recorded choice
/// and budget on any sequence and prompt. Every call first checks the cache's ladder names and
/// geometry against the file's (check_compatible; an error aborts the layer's prefill, which
/// adaptive_cache rolls back). Copies share the profile; equal when their profiles are.
class replay_profiler {
public:
  /// Throws errc::invalid_argument when the profile is inconsistent (validate()).
  explicit replay_profiler(head_profile p)
      : replay_profiler(std::make_shared<const head_profile>(std::move(p))) {}
  explicit replay_profiler(std::shared_ptr<const head_profile> p) : profile_(std::move(p)) {
    expects(profile_ != nullptr, errc::invalid_argument, "replay_profiler: null profile");
    validate(*profile_);
  }

  [[nodiscard]] auto operator()(const candidate_scores& s) const -> head_choice {
    check_compatible(*profile_, std::span<const std::string_view>(s.names));
    expects(s.size() == s.names.size(), errc::invalid_argument,
            "replay_profiler: candidate_scores has names and measurements of different lengths");
    check_compatible(*profile_, s.context.n_layer, s.context.n_head_kv);
    const auto& e = profile_->at(s.context.layer, s.context.kv_head);
    return {e.choice, e.budget};
  }

  [[nodiscard]] auto profile() const noexcept -> const head_profile& { return *profile_; }
  /// The T recorded in the file (NaN: none).
  [[nodiscard]] auto threshold() const noexcept -> double { return profile_->threshold; }

  friend auto operator==(const replay_profiler& a, const replay_profiler& b) -> bool {
    return a.profile_ == b.profile_ || *a.profile_ == *b.profile_;
  }

private:
  std::shared_ptr<const head_profile> profile_; // never null
};
static_assert(profiler<replay_profiler> && head_profiler<replay_profiler>);

} // namespace kvsieve
