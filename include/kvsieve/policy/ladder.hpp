// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// ladder<C...>: the ordered candidate list a profiler chooses from (FastGen Eq. 2). The choice
/// is a runtime index; `visit` turns it back into the candidate's type by one fold
/// (core/dispatch.hpp), so nothing on the hot path is virtual.

#include <array>
#include <concepts>
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include <kvsieve/core/dispatch.hpp>
#include <kvsieve/core/error.hpp>
#include <kvsieve/policy/concepts.hpp>

namespace kvsieve {
namespace detail {
/// Candidate I of a ladder, checked one requirement of `policy` at a time so that the error names
/// the requirement; the candidate's index and type are in this struct's instantiation, which
/// every compiler prints beside the message ("required from" / "in instantiation of").
template <std::size_t I, class C>
struct ladder_candidate : check_optional_hooks<C> {
  static_assert(names_policy_name<C>,
                "kvsieve::ladder: candidate (index and type in ladder_candidate<I, C>) has no "
                "`static constexpr std::string_view name`");
  static_assert(!names_policy_name<C> || has_policy_name<C>,
                "kvsieve::ladder: candidate (index and type in ladder_candidate<I, C>) has a "
                "`name` that is not a `static constexpr` member convertible to std::string_view");
  static_assert(has_keep_rule<C>,
                "kvsieve::ladder: candidate (index and type in ladder_candidate<I, C>) has no "
                "`bool keeps(kvsieve::token_info, kvsieve::step_context) const`");
  static_assert(std::copyable<C>,
                "kvsieve::ladder: candidate (index and type in ladder_candidate<I, C>) is not "
                "copyable");
};

template <class Indices, class... C>
inline constexpr bool ladder_candidates_checked = false;
template <std::size_t... I, class... C>
inline constexpr bool ladder_candidates_checked<std::index_sequence<I...>, C...> =
    (ladder_candidate<I, C>::value && ...);
} // namespace detail

/// Each candidate must model `policy`. The class is not constrained by the concept in its template
/// head: a static_assert per requirement and candidate (detail::ladder_candidate) says which
/// requirement of which candidate fails, where a constraint would say only that the whole
/// conjunction did.
template <class... C>
  requires(sizeof...(C) >= 1 && sizeof...(C) <= 255) // a head's choice is stored in one byte
class ladder {
  static_assert(detail::ladder_candidates_checked<std::index_sequence_for<C...>, C...>);

public:
  static constexpr std::size_t size = sizeof...(C);
  using candidates = std::tuple<C...>;

  constexpr ladder()
    requires(std::default_initializable<C> && ...)
  = default;
  constexpr explicit ladder(C... members) : candidates_(std::move(members)...) {}

  template <std::size_t I>
  [[nodiscard]] constexpr auto get() const noexcept -> const std::tuple_element_t<I, candidates>& {
    return std::get<I>(candidates_);
  }

  /// Calls f(candidate) with the candidate at `index` as its own type.
  /// Throws errc::out_of_range when index >= size.
  template <class F>
  constexpr void visit(std::size_t index, F&& f) const {
    expects(index < size, errc::out_of_range,
            [&] { return fmt::format("ladder index {} >= size {}", index, size); });
    dispatch_index<size>(index, [&](auto i) { f(std::get<decltype(i)::value>(candidates_)); });
  }

  [[nodiscard]] static constexpr auto name(std::size_t index) -> std::string_view {
    constexpr std::array<std::string_view, size> names{detail::name_or_placeholder<C>()...};
    return index < size ? names[index] : std::string_view("?");
  }

  /// True when some candidate ranks tokens by accumulated attention.
  static constexpr bool uses_scores = (kvsieve::uses_scores<C> || ...);

private:
  std::tuple<C...> candidates_;
};

template <class L>
inline constexpr bool is_ladder_v = false;
template <class... C>
inline constexpr bool is_ladder_v<ladder<C...>> = true;

template <class L>
concept candidate_ladder = is_ladder_v<std::remove_cvref_t<L>>;

} // namespace kvsieve
