// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Policies chosen by name at run time, for front ends that read the choice from a user
/// (kvsieve-generate's --policy, the Python module's policy="..."): one table from a name and its
/// parameters to a ladder and a profiler, so that every front end means the same by "h2o".
///   with_named_policy(settings, fn)   calls fn(ladder, profiler) with the pair `settings.name`
///                                     selects and returns what fn returns; every instantiation
///                                     of fn must return the same type
///   policy_names, is_policy_name, budgeted_policy    the names and which ones --budget sizes
/// Parameters a name does not use are ignored (the caller may say so; kvsieve-generate does).
/// Replaying a head-profile file is not here: it is FastGen's ladder (named_fastgen_ladder) with
/// a replay_profiler, and profile/profile_file.hpp is kept out of translation units that do not
/// need it.

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h> // fmt::join

#include <kvsieve/core/error.hpp>
#include <kvsieve/policy/fastgen.hpp>
#include <kvsieve/policy/ladder.hpp>
#include <kvsieve/policy/peers.hpp>
#include <kvsieve/profile/budget_profilers.hpp>
#include <kvsieve/profile/recovery_profiler.hpp>

namespace kvsieve {

/// Every name with_named_policy accepts (docs/policies.md describes each).
inline constexpr std::string_view policy_names[] = {
    "fastgen", "full", "local",  "frequent",  "local+frequent", "streaming",
    "h2o",     "tova", "snapkv", "pyramidkv", "adakv"};

[[nodiscard]] constexpr auto is_policy_name(std::string_view name) noexcept -> bool {
  return std::find(std::begin(policy_names), std::end(policy_names), name) !=
         std::end(policy_names);
}

/// The policies sized by policy_settings::budget (the field's policies, policy/peers.hpp).
[[nodiscard]] constexpr auto budgeted_policy(std::string_view name) noexcept -> bool {
  return name == "h2o" || name == "tova" || name == "snapkv" || name == "pyramidkv" ||
         name == "adakv";
}

/// A policy by name and every parameter some name uses; the defaults are kvsieve-generate's.
struct policy_settings {
  std::string name = "fastgen";
  double threshold = 0.95;     ///< fastgen: T in (0, 1]
  double local_ratio = 0.3;    ///< fastgen, local, local+frequent: r_l in [0, 1]
  double frequent_ratio = 0.3; ///< fastgen, frequent, local+frequent: r_f in [0, 1]
  std::int32_t window = 256;   ///< streaming: the recent window (4 sinks besides)
  /// Tokens per KV head: h2o (half heavy hitters, half recent), tova, snapkv (its 32-row
  /// observation window kept besides); the mean per layer for pyramidkv and adakv.
  std::int32_t budget = 256;
};

/// FastGen's ladder (Eq. 2) with the settings' r_l and r_f.
[[nodiscard]] inline auto named_fastgen_ladder(const policy_settings& s) -> fastgen_ladder {
  return make_fastgen_ladder({.local_ratio = s.local_ratio, .frequent_ratio = s.frequent_ratio});
}

/// Calls fn(ladder, profiler) with the ladder and profiler that s.name selects:
///   fastgen        make_fastgen_ladder(r_l, r_f), recovery_profiler(T)
///   full, local, frequent, local+frequent, streaming, h2o, tova, snapkv
///                  ladder<that policy>, recovery_profiler(1) (a one-rung ladder: no choice)
///   pyramidkv      ladder<snapkv>, pyramid_profiler(budget)
///   adakv          ladder<snapkv>, adakv_profiler(budget) (a layer-wide profiler)
/// Throws errc::invalid_argument for an unknown name (listing the known ones) and whatever the
/// policy or profiler constructors throw for their parameters (T outside (0, 1], a ratio outside
/// [0, 1], a negative budget or window), before fn is called.
template <class Fn>
auto with_named_policy(const policy_settings& s, Fn&& fn)
    -> std::invoke_result_t<Fn, fastgen_ladder, recovery_profiler> {
  using namespace policies;
  const std::string_view n = s.name;
  if (n == "fastgen") {
    return fn(named_fastgen_ladder(s), recovery_profiler(s.threshold));
  }
  if (n == "h2o") {
    return fn(ladder<h2o>(h2o(s.budget / 2, s.budget - s.budget / 2)), recovery_profiler(1.0));
  }
  if (n == "tova") {
    return fn(ladder<tova>(tova(s.budget)), recovery_profiler(1.0));
  }
  if (n == "snapkv") {
    return fn(ladder<snapkv>(snapkv(s.budget)), recovery_profiler(1.0));
  }
  if (n == "pyramidkv") {
    return fn(ladder<snapkv>(snapkv(s.budget)), pyramid_profiler(s.budget));
  }
  if (n == "adakv") {
    return fn(ladder<snapkv>(snapkv(s.budget)), adakv_profiler(s.budget));
  }
  if (n == "full") {
    return fn(ladder<full>(), recovery_profiler(1.0));
  }
  if (n == "local") {
    return fn(ladder<local>(local(s.local_ratio)), recovery_profiler(1.0));
  }
  if (n == "frequent") {
    return fn(ladder<frequent>(frequent(s.frequent_ratio)), recovery_profiler(1.0));
  }
  if (n == "local+frequent") {
    return fn(ladder<local_frequent>(local_frequent(local(s.local_ratio),
                                                    frequent(s.frequent_ratio))),
              recovery_profiler(1.0));
  }
  if (n == "streaming") {
    return fn(ladder<streaming>(streaming(sinks(4), recent(s.window))), recovery_profiler(1.0));
  }
  raise(errc::invalid_argument, fmt::format("unknown policy '{}' (one of: {})", s.name,
                                            fmt::join(policy_names, ", ")));
}

} // namespace kvsieve
