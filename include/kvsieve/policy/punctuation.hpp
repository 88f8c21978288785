// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen C_punct (§3.4): keep only punctuation tokens (classified by vocab/token_classifier.hpp).

#include <string_view>

#include <kvsieve/policy/concepts.hpp>

namespace kvsieve::policies {

struct punctuation {
  static constexpr std::string_view name = "punctuation";
  [[nodiscard]] constexpr auto keeps(token_info tok, step_context /*ctx*/) const noexcept -> bool {
    return has(tok.cls, token_class::punctuation);
  }
  friend constexpr auto operator==(const punctuation&, const punctuation&) -> bool = default;
};
static_assert(policy<punctuation>);

} // namespace kvsieve::policies
