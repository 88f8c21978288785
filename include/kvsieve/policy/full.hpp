// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen C_full (§3.4): no compression; every token stays.

#include <string_view>

#include <kvsieve/policy/concepts.hpp>

namespace kvsieve::policies {

struct full {
  static constexpr std::string_view name = "full";
  [[nodiscard]] constexpr auto keeps(token_info /*tok*/, step_context /*ctx*/) const noexcept
      -> bool {
    return true;
  }
  friend constexpr auto operator==(const full&, const full&) -> bool = default;
};
static_assert(policy<full>);

} // namespace kvsieve::policies
