// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
// The smallest user policy (docs/policies.md): every token whose position is a multiple of 8.
// Shared by custom_policy.cpp (a C++ cache) and ../python_policy (the same ladder for Python).
#include <string_view>

#include <kvsieve/kvsieve.hpp>

// example-begin every_8th
struct every_8th {
  static constexpr std::string_view name = "every_8th";
  [[nodiscard]] constexpr auto keeps(kvsieve::token_info tok, kvsieve::step_context) const
      -> bool {
    return tok.position % 8 == 0;
  }
  friend constexpr auto operator==(const every_8th&, const every_8th&) -> bool = default;
};
static_assert(kvsieve::policy<every_8th>);

using every_8th_local = kvsieve::policies::hybrid<every_8th, kvsieve::policies::local>;
using every_8th_ladder = kvsieve::ladder<every_8th, every_8th_local, kvsieve::policies::full>;
// example-end every_8th
