// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen C_special (§3.4): keep only special tokens (BOS, EOS, chat markers, ...).

#include <string_view>

#include <kvsieve/policy/concepts.hpp>

namespace kvsieve::policies {

struct special {
  static constexpr std::string_view name = "special";
  [[nodiscard]] constexpr auto keeps(token_info tok, step_context /*ctx*/) const noexcept -> bool {
    return has(tok.cls, token_class::special);
  }
  friend constexpr auto operator==(const special&, const special&) -> bool = default;
};
static_assert(policy<special>);

} // namespace kvsieve::policies
