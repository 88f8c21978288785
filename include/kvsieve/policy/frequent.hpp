// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen C_frequent (§3.4; H2O, Scissorhands): keep the k highest-scoring tokens among those no
/// other member keeps, k = ceil(r_f * t) (DEFAULT) or ceil(r_f * L) (OPTION). The score is the
/// accumulated attention a token has received (fastgen-spec §2, §6 item 4) by default, or any
/// score_rule (policy/ranking.hpp); on a tie the older token leaves first. Evicted tokens never
/// return.

#include <cstdint>
#include <string_view>

#include <kvsieve/policy/concepts.hpp>

namespace kvsieve::policies {

class frequent {
public:
  static constexpr std::string_view name = "frequent";

  /// Throws errc::invalid_argument unless 0 <= ratio <= 1 and the rule is valid (valid_rule).
  explicit frequent(double ratio = 0.3, length_base base = length_base::current,
                    score_rule rank = {})
      : ratio_(ratio), base_(base), rank_(rank) {
    check_ratio(ratio, "frequent ratio r_f");
    check_rule(rank, "frequent ranking");
  }

  [[nodiscard]] constexpr auto keeps(token_info /*tok*/, step_context /*ctx*/) const noexcept
      -> bool {
    return false;
  }
  [[nodiscard]] constexpr auto budget(step_context ctx) const noexcept -> std::int32_t {
    return ratio_count(ratio_, base_length(base_, ctx));
  }
  [[nodiscard]] constexpr auto ranking() const noexcept -> score_rule { return rank_; }
  [[nodiscard]] constexpr auto ratio() const noexcept -> double { return ratio_; }
  friend constexpr auto operator==(const frequent&, const frequent&) -> bool = default;

private:
  double ratio_;
  length_base base_;
  score_rule rank_;
};
static_assert(policy<frequent>);

} // namespace kvsieve::policies
