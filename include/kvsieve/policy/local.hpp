// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen C_local (§3.4): keep the w most recent tokens, w = ceil(r_l * t) (DEFAULT) or
/// ceil(r_l * L) (OPTION length_base::prompt). A token at position pos leaves when
/// t - 1 - pos >= w_t (fastgen-spec §2). Also `recent`, a window of a fixed token count.

#include <cstdint>
#include <string_view>

#include <kvsieve/policy/concepts.hpp>

namespace kvsieve::policies {

class local {
public:
  static constexpr std::string_view name = "local";

  /// Throws errc::invalid_argument unless 0 <= ratio <= 1.
  explicit local(double ratio = 0.3, length_base base = length_base::current)
      : ratio_(ratio), base_(base) {
    check_ratio(ratio, "local ratio r_l");
  }

  [[nodiscard]] constexpr auto keeps(token_info /*tok*/, step_context /*ctx*/) const noexcept
      -> bool {
    return false;
  }
  [[nodiscard]] constexpr auto window(step_context ctx) const noexcept -> std::int32_t {
    return ratio_count(ratio_, base_length(base_, ctx));
  }
  [[nodiscard]] constexpr auto ratio() const noexcept -> double { return ratio_; }
  [[nodiscard]] constexpr auto base() const noexcept -> length_base { return base_; }
  friend constexpr auto operator==(const local&, const local&) -> bool = default;

private:
  double ratio_;
  length_base base_;
};
static_assert(policy<local>);

/// A window of a fixed number of tokens (StreamingLLM's recent window).
class recent {
public:
  static constexpr std::string_view name = "recent";
  /// Throws errc::invalid_argument when tokens < 0.
  explicit recent(std::int32_t tokens = 256) : tokens_(tokens) {
    expects(tokens >= 0, errc::invalid_argument, "recent window must be >= 0 tokens");
  }
  [[nodiscard]] constexpr auto keeps(token_info /*tok*/, step_context /*ctx*/) const noexcept
      -> bool {
    return false;
  }
  [[nodiscard]] constexpr auto window(step_context /*ctx*/) const noexcept -> std::int32_t {
    return tokens_;
  }
  friend constexpr auto operator==(const recent&, const recent&) -> bool = default;

private:
  std::int32_t tokens_;
};
static_assert(policy<recent>);

/// The first n tokens (attention sinks, StreamingLLM; fastgen-spec §6 item 5).
class sinks {
public:
  static constexpr std::string_view name = "sinks";
  /// Throws errc::invalid_argument when n < 0.
  explicit sinks(std::int32_t n = 4) : n_(n) {
    expects(n >= 0, errc::invalid_argument, "the number of sink tokens must be >= 0");
  }
  [[nodiscard]] constexpr auto keeps(token_info tok, step_context /*ctx*/) const noexcept -> bool {
    return tok.position < n_;
  }
  friend constexpr auto operator==(const sinks&, const sinks&) -> bool = default;

private:
  std::int32_t n_;
};
static_assert(policy<sinks>);

} // namespace kvsieve::policies
