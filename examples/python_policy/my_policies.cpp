// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// Your own kvsieve policies as a Python module: two ladders registered by name, usable as
// kvsieve.Cache(..., policy="every_8th") or kvsieve.hf.Cache(model, policy="recent_top") once
// `import my_policies` has run. docs/python.md ("Your own policy") walks through this file.
#include <cstdint>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <kvsieve/kvsieve.hpp>
#include <kvsieve/python/extension.hpp>

// docs/policies.md's smallest policy, every_8th, and its ladder (every_8th_ladder).
#include "../custom_policy/every_8th.hpp"

namespace {

// The first 4 tokens plus a budget of the best tokens by the latest step's attention alone
// (a TOVA with sinks); the budget comes from the cache's `budget=` setting.
struct recent_top {
  static constexpr std::string_view name = "recent_top";
  std::int32_t tokens = 64;
  [[nodiscard]] constexpr auto keeps(kvsieve::token_info tok, kvsieve::step_context) const
      -> bool {
    return tok.position < 4;
  }
  [[nodiscard]] constexpr auto budget(kvsieve::step_context) const -> std::int32_t {
    return tokens;
  }
  [[nodiscard]] constexpr auto ranking() const -> kvsieve::score_rule {
    return kvsieve::score_rule::latest();
  }
  friend constexpr auto operator==(const recent_top&, const recent_top&) -> bool = default;
};
static_assert(kvsieve::policy<recent_top>);

} // namespace

KVSIEVE_PYTHON_POLICIES(my_policies, registry) {
  registry.add("every_8th", "every 8th position, else that plus a local window, else full",
               [](const kvsieve::policy_settings& s) {
                 return std::pair{
                     every_8th_ladder(every_8th{},
                                      every_8th_local(every_8th{},
                                                      kvsieve::policies::local(s.local_ratio)),
                                      kvsieve::policies::full{}),
                     kvsieve::recovery_profiler(s.threshold)};
               });
  registry.add("recent_top", "4 sinks + `budget` tokens ranked by the latest attention",
               [](const kvsieve::policy_settings& s) {
                 kvsieve::expects(s.budget >= 1, kvsieve::errc::invalid_argument, [&] {
                   return fmt::format("recent_top: budget must be >= 1, got {}", s.budget);
                 });
                 // One candidate: the profiler has nothing to choose, T = 1 says so.
                 return std::pair{kvsieve::ladder<recent_top>(recent_top{s.budget}),
                                  kvsieve::recovery_profiler(1.0)};
               });
}
