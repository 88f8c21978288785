// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// hybrid<P...>: the union of its members (FastGen §3.4, "C_a + C_b"): a token stays while any
/// member keeps it. In the normal form (policy/concepts.hpp) the union is rule OR rule and window
/// max window; the budget, if a member has one, ranks among tokens that no member's rule or
/// window keeps, which is FastGen's "top-k among tokens no other member keeps".
/// At most one member (nested hybrids included) may have a budget: two budgets have no single
/// ranking (each member may rank differently), and their union is not a top-k of anything, so
/// no budget would say what such a hybrid keeps. It is a static_assert, not a silent sum.
/// Every member must model `policy`; a static_assert per requirement names the one that fails.

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <type_traits>

#include <kvsieve/policy/concepts.hpp>

namespace kvsieve {
namespace detail {

/// "a+b+c", built at compile time from the members' names.
template <class... P>
struct joined_name {
  static constexpr std::size_t length =
      (name_or_placeholder<P>().size() + ... + 0) + (sizeof...(P) - 1);
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
    (append(name_or_placeholder<P>()), ...);
    return out;
  }();
  static constexpr std::string_view value{storage.data(), length};
};

/// Member P of a hybrid, checked one requirement of `policy` at a time (see ladder_candidate).
template <class P>
struct hybrid_member : check_optional_hooks<P> {
  static_assert(names_policy_name<P>,
                "kvsieve::hybrid: member (type in hybrid_member<P>) has no "
                "`static constexpr std::string_view name`");
  static_assert(!names_policy_name<P> || has_policy_name<P>,
                "kvsieve::hybrid: member (type in hybrid_member<P>) has a `name` that is not a "
                "`static constexpr` member convertible to std::string_view");
  static_assert(has_keep_rule<P>,
                "kvsieve::hybrid: member (type in hybrid_member<P>) has no "
                "`bool keeps(kvsieve::token_info, kvsieve::step_context) const`");
  static_assert(std::copyable<P>,
                "kvsieve::hybrid: member (type in hybrid_member<P>) is not copyable");
};

/// Index of the member with a budget, or sizeof...(P) when none has one.
template <class... P>
[[nodiscard]] consteval auto budget_index() -> std::size_t {
  std::size_t i = 0;
  std::size_t found = sizeof...(P);
  ((found = has_budget<P> && found == sizeof...(P) ? i : found, ++i), ...);
  return found;
}

/// The budget part of hybrid `Derived`: `budget` and `ranking` exist only when a member (index I
/// of N) has a budget, so a hybrid without one has no member of either name (a constrained-away
/// member would still be a member called `budget`, which the strict hook check rejects).
template <class Derived, std::size_t I, std::size_t N>
struct hybrid_budget {
  friend constexpr auto operator==(const hybrid_budget&, const hybrid_budget&) -> bool = default;
};
template <class Derived, std::size_t I, std::size_t N>
  requires(I < N)
struct hybrid_budget<Derived, I, N> {
  /// The budgeted member's budget.
  [[nodiscard]] constexpr auto budget(step_context ctx) const -> std::int32_t {
    return budget_of(std::get<I>(self().members()), ctx);
  }
  /// The budgeted member's ranking.
  [[nodiscard]] constexpr auto ranking() const { return ranking_of(std::get<I>(self().members())); }
  friend constexpr auto operator==(const hybrid_budget&, const hybrid_budget&) -> bool = default;

private:
  [[nodiscard]] constexpr auto self() const noexcept -> const Derived& {
    return static_cast<const Derived&>(*this);
  }
};

} // namespace detail

namespace policies {

template <class... P>
  requires(sizeof...(P) >= 1)
class hybrid
    : public detail::hybrid_budget<hybrid<P...>, detail::budget_index<P...>(), sizeof...(P)> {
  static_assert((detail::hybrid_member<P>::value && ...));
  static_assert((0 + ... + static_cast<int>(has_budget<P>)) <= 1,
                "kvsieve::hybrid: more than one member has a budget; a hybrid takes at most one "
                "(two budgets have no single ranking and their union is not a budget: put the "
                "combined budget in one member)");

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
  [[nodiscard]] constexpr auto members() const noexcept -> const std::tuple<P...>& {
    return members_;
  }
  friend constexpr auto operator==(const hybrid&, const hybrid&) -> bool = default;

private:
  std::tuple<P...> members_;
};

} // namespace policies
} // namespace kvsieve
