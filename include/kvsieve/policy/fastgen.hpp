// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen's candidate ladder (Eq. 2), in the paper's order:
///   special, special+punct, special+punct+frequent, special+punct+frequent+local, full.
/// Each candidate keeps a superset of the one before, so cost and recovery rise along the ladder
/// and the first candidate meeting T is the argmin of Eq. 1.

#include <kvsieve/policy/frequent.hpp>
#include <kvsieve/policy/full.hpp>
#include <kvsieve/policy/hybrid.hpp>
#include <kvsieve/policy/ladder.hpp>
#include <kvsieve/policy/local.hpp>
#include <kvsieve/policy/punctuation.hpp>
#include <kvsieve/policy/special.hpp>

namespace kvsieve {

/// The hyperparameters of the ladder (fastgen-spec §4 and §6 items 2-4); defaults are the paper's.
struct fastgen_params {
  double local_ratio = 0.3;                   ///< r_l
  double frequent_ratio = 0.3;                ///< r_f
  length_base window_base = length_base::current; ///< §6.2
  length_base budget_base = length_base::current; ///< §6.3
  score_rule ranking = score_mode::cumulative;    ///< §6.4 (any score_rule)
};

namespace policies {
using special_punct = hybrid<special, punctuation>;
using special_punct_frequent = hybrid<special, punctuation, frequent>;
using special_punct_frequent_local = hybrid<special, punctuation, frequent, local>;
/// Fixed baselines applied to every head (H2O = local + frequent; StreamingLLM = sinks + recent).
using local_frequent = hybrid<local, frequent>;
using streaming = hybrid<sinks, recent>;
} // namespace policies

using fastgen_ladder =
    ladder<policies::special, policies::special_punct, policies::special_punct_frequent,
           policies::special_punct_frequent_local, policies::full>;

/// FastGen's ladder with the given ratios. Throws errc::invalid_argument for ratios outside [0, 1].
[[nodiscard]] inline auto make_fastgen_ladder(const fastgen_params& p = {}) -> fastgen_ladder {
  using namespace policies;
  const frequent freq(p.frequent_ratio, p.budget_base, p.ranking);
  const local loc(p.local_ratio, p.window_base);
  return fastgen_ladder(special{}, special_punct{}, special_punct_frequent({}, {}, freq),
                        special_punct_frequent_local({}, {}, freq, loc), full{});
}

static_assert(policy<policies::special_punct_frequent_local>);
static_assert(policy<policies::streaming>);
static_assert(fastgen_ladder::uses_scores);

} // namespace kvsieve
