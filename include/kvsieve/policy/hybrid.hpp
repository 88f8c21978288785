// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// hybrid<P...>: the union of its members (FastGen §3.4, "C_a + C_b"): a token stays while any
/// member keeps it. In the normal form (policy/concepts.hpp) the union is rule OR rule, window
/// max window, budget sum budget; the budget ranks among tokens that no member's rule or window
/// keeps, which is FastGen's "top-k among tokens no other member keeps".

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <tuple>

#include <kvsieve/policy/concepts.hpp>

namespace kvsieve {
namespace detail {

/// "a+b+c", built at compile time from the members' names.
template <class... P>
struct joined_name {
  static constexpr std::size_t length =
      (std::string_view(P::name).size() + ... + 0) + (sizeof...(P) - 1);
  static constexpr auto storage = [] {
    std::array<char, length + 1> out{};
    std::size_t i = 0;
    bool first = true;
    auto append = [&](std::string_view s) {
      if (!first) {
        out[i++] = '+';
      }
      first = false;
      for (char c : s) {
        out[i++] = c;
      }
    };
    (append(P::name), ...);
    return out;
  }();
  static constexpr std::string_view value{storage.data(), length};
};

} // namespace detail

namespace policies {

template <policy... P>
  requires(sizeof...(P) >= 1)
class hybrid {
public:
  static constexpr std::string_view name = detail::joined_name<P...>::value;

  constexpr hybrid()
    requires(std::default_initializable<P> && ...)
  = default;
  constexpr explicit hybrid(P... members) : members_(std::move(members)...) {}

  [[nodiscard]] constexpr auto keeps(token_info tok, step_context ctx) const -> bool {
    return std::apply([&](const auto&... m) { return (m.keeps(tok, ctx) || ...); }, members_);
  }
  [[nodiscard]] constexpr auto window(step_context ctx) const -> std::int32_t {
    return std::apply([&](const auto&... m) { return std::max({window_of(m, ctx)...}); },
                      members_);
  }
  [[nodiscard]] constexpr auto budget(step_context ctx) const -> std::int32_t
    requires(uses_scores<P> || ...)
  {
    return std::apply([&](const auto&... m) { return (budget_of(m, ctx) + ...); }, members_);
  }
  /// The ranking of the first member with a budget.
  [[nodiscard]] constexpr auto ranking() const -> score_mode {
    score_mode mode = score_mode::cumulative;
    bool found = false;
    std::apply(
        [&](const auto&... m) {
          ((!found && uses_scores<std::remove_cvref_t<decltype(m)>>
                ? (mode = ranking_of(m), found = true)
                : false),
           ...);
        },
        members_);
    return mode;
  }
  [[nodiscard]] constexpr auto members() const noexcept -> const std::tuple<P...>& {
    return members_;
  }
  friend constexpr auto operator==(const hybrid&, const hybrid&) -> bool = default;

private:
  std::tuple<P...> members_;
};

} // namespace policies
} // namespace kvsieve
