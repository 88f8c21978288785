// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Runtime index -> compile-time index, by one fold over std::index_sequence (the idea of CUB's
/// cc_dispatch). Dispatches on std::size_t, never on class-type template arguments (GCC 12).

#include <cstddef>
#include <type_traits>
#include <utility>

namespace kvsieve {

/// Calls `f(std::integral_constant<std::size_t, I>{})` for the I equal to `index`.
/// Precondition: index < N (callers validate; an out-of-range index calls nothing).
template <std::size_t N, class F>
constexpr void dispatch_index(std::size_t index, F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    // The fold's value is unused; the cast says so (clang's -Wunused-value).
    static_cast<void>(
        ((index == I ? (f(std::integral_constant<std::size_t, I>{}), true) : false) || ...));
  }(std::make_index_sequence<N>{});
}

} // namespace kvsieve
