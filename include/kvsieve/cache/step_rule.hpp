// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The per-step decisions of FastGen Algorithm 2 that do not depend on where the tokens live,
/// written once for both caches: the host's step_algorithm.hpp and the device's step kernels
/// (cache/cuda/detail/step_kernels.cuh) call these, so the two cannot drift apart. Everything
/// here is constexpr and callable on the device (nvcc's --expt-relaxed-constexpr, as the
/// policies' own keeps / window / budget are).

#include <cstdint>

#include <kvsieve/cache/options.hpp>
#include <kvsieve/core/config.hpp>
#include <kvsieve/policy/concepts.hpp>
#include <kvsieve/policy/select.hpp>

namespace kvsieve {

/// A head's policy at one step: does its rule keep the new token, how wide is its recent window,
/// how many tokens may its budget hold.
struct step_rule {
  bool rule = false;
  std::int32_t window = 0; ///< clamped to [0, t]
  std::int32_t budget = 0; ///< >= 0
};

namespace detail {

/// The rule, window and budget of step ctx (ctx.length = t, the new token at position t - 1).
/// The first n_sinks positions are kept by every candidate (fastgen-spec §6.5); a budget the
/// profiler fixed for the head (fixed_budget >= 0) replaces the policy's own.
template <policy P>
[[nodiscard]] KVSIEVE_HOST_DEVICE constexpr auto rule_of_step(const P& pol, token_info tok,
                                                              step_context ctx,
                                                              std::int32_t n_sinks,
                                                              std::int32_t fixed_budget)
    -> step_rule {
  step_rule r;
  r.rule = tok.position < n_sinks || pol.keeps(tok, ctx);
  const std::int32_t w = window_of(pol, ctx);
  r.window = w < 0 ? 0 : (w > ctx.length ? ctx.length : w);
  const std::int32_t b = budget_of(pol, ctx);
  r.budget = fixed_budget >= 0 ? fixed_budget : (b > 0 ? b : 0);
  return r;
}

/// fastgen-spec §6.6: whether the new token is dropped before attention. Only under
/// new_token_mode::drop_before_attention, only when nothing of the policy could keep it, and never
/// for an empty head (a query must attend to something).
[[nodiscard]] KVSIEVE_HOST_DEVICE constexpr auto drops_new_token(const step_rule& r,
                                                                 new_token_mode mode,
                                                                 std::int32_t resident) -> bool {
  return mode == new_token_mode::drop_before_attention && !r.rule && r.window == 0 &&
         r.budget == 0 && resident > 0;
}

/// The first position of the recent window after step t. Evicted tokens never return, so it only
/// moves forward.
[[nodiscard]] KVSIEVE_HOST_DEVICE constexpr auto window_begin_after(std::int32_t window_begin,
                                                                    std::int32_t t,
                                                                    const step_rule& r)
    -> std::int32_t {
  return window_begin > t - r.window ? window_begin : t - r.window;
}

/// Why a token that no rule or window keeps any more stays: its budget, if it has one.
[[nodiscard]] KVSIEVE_HOST_DEVICE constexpr auto demoted_reason(const step_rule& r)
    -> keep_reason {
  return r.budget > 0 ? keep_reason::budget : keep_reason::evicted;
}

/// The appended new token's reason after attention: its rule, else the window when its position
/// is inside the window after the step (new_begin), else what a demoted token gets.
[[nodiscard]] KVSIEVE_HOST_DEVICE constexpr auto new_token_reason(const step_rule& r,
                                                                  std::int32_t position,
                                                                  std::int32_t new_begin)
    -> keep_reason {
  if (r.rule) {
    return keep_reason::rule;
  }
  return position >= new_begin ? keep_reason::window : demoted_reason(r);
}

} // namespace detail
} // namespace kvsieve
