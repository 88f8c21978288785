// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen's profiler (Eq. 1 over the Eq. 2 ladder): the first candidate whose recovered
/// attention mass reaches T. On FastGen's ladder each candidate keeps a superset of the one
/// before, so the first is also the cheapest (fastgen-spec §1). When no candidate qualifies
/// (a ladder without `full`), the last one is chosen.

#include <cstddef>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/profile/concepts.hpp>

namespace kvsieve {

class recovery_profiler {
public:
  /// Throws errc::invalid_argument unless 0 < threshold <= 1.
  explicit recovery_profiler(double threshold = 0.95) : threshold_(threshold) {
    expects(threshold > 0.0 && threshold <= 1.0, errc::invalid_argument, [&] {
      return fmt::format("recovery threshold T must be in (0, 1], got {}", threshold);
    });
  }

  [[nodiscard]] auto operator()(const candidate_scores& s) const -> std::size_t {
    expects(s.size() > 0, errc::invalid_argument, "recovery_profiler: no candidates");
    // A candidate that keeps everything recovers exactly 1 but may sum to 1 - 1e-16; T = 1 must
    // still accept it, so compare with a tolerance far below any meaningful T.
    constexpr double tolerance = 1e-9;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s.recovered[i] >= threshold_ - tolerance) {
        return i;
      }
    }
    return s.size() - 1;
  }

  [[nodiscard]] auto threshold() const noexcept -> double { return threshold_; }
  friend auto operator==(const recovery_profiler&, const recovery_profiler&) -> bool = default;

private:
  double threshold_;
};
static_assert(profiler<recovery_profiler>);

} // namespace kvsieve
