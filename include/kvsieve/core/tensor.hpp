// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// tensor_view<T, Rank, Space>: a non-owning, row-major, contiguous view with named extents. It is
/// what the cache's prefill/decode take, so every shape is checked at the API boundary with a
/// message that names the tensor (C++20 has no std::mdspan; this is the small part of it we need).
/// Space (core/space.hpp) says where the elements live: a cache takes views of its store's space,
/// so a host pointer handed to the device cache (or the reverse) is a compile error, not a fault.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <source_location>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/space.hpp>

namespace kvsieve {

template <class T, std::size_t Rank, memory_space Space = host_space>
class tensor_view {
public:
  using element_type = T;
  using memory_space = Space;
  static constexpr std::size_t rank = Rank;

  constexpr tensor_view() = default;
  constexpr tensor_view(T* data, std::array<std::size_t, Rank> extents) noexcept
      : data_(data), extents_(extents) {}
  /// A view of T converts to a view of const T in the same space.
  template <class U>
    requires std::is_same_v<const U, T> && (!std::is_same_v<U, T>)
  constexpr tensor_view(const tensor_view<U, Rank, Space>& other) noexcept // NOLINT: implicit
      : data_(other.data()), extents_(other.extents()) {}

  [[nodiscard]] constexpr auto data() const noexcept -> T* { return data_; }
  [[nodiscard]] constexpr auto extent(std::size_t r) const noexcept -> std::size_t {
    return extents_[r];
  }
  [[nodiscard]] constexpr auto extents() const noexcept -> const std::array<std::size_t, Rank>& {
    return extents_;
  }
  [[nodiscard]] constexpr auto size() const noexcept -> std::size_t {
    std::size_t n = 1;
    for (auto e : extents_) {
      n *= e;
    }
    return n;
  }
  [[nodiscard]] constexpr auto span() const noexcept -> std::span<T> { return {data_, size()}; }

  /// Pointer to the innermost row at the given leading indices (unchecked).
  template <class... I>
    requires(sizeof...(I) == Rank - 1)
  [[nodiscard]] constexpr auto row(I... idx) const noexcept -> T* {
    std::array<std::size_t, Rank - 1> i{static_cast<std::size_t>(idx)...};
    std::size_t off = 0;
    for (std::size_t r = 0; r + 1 < Rank; ++r) {
      off = off * extents_[r] + i[r];
    }
    return data_ + off * extents_[Rank - 1];
  }

  /// Throws errc::shape_mismatch naming `what` unless the extents are exactly `expected`.
  void expect_shape(std::string_view what, const std::array<std::size_t, Rank>& expected,
                    std::source_location where = std::source_location::current()) const {
    expects(extents_ == expected, errc::shape_mismatch,
            [&] { return fmt::format("{} has shape {}, expected {}", what, extents_, expected); },
            where);
    expects(data_ != nullptr || size() == 0, errc::invalid_argument,
            [&] { return fmt::format("{} has a null data pointer", what); }, where);
  }

  /// Throws errc::invalid_argument naming `what` and the index of the first NaN or infinity.
  /// O(size()); for inputs a caller asked to have checked (cache_options::reject_non_finite).
  /// Host-accessible views only (the device cache checks on the device).
  void expect_finite(std::string_view what,
                     std::source_location where = std::source_location::current()) const
    requires(Space::host_accessible)
  {
    const auto values = span();
    const auto bad = std::find_if(values.begin(), values.end(),
                                  [](const auto& x) { return !std::isfinite(x); });
    if (bad == values.end()) [[likely]] {
      return;
    }
    auto flat = static_cast<std::size_t>(bad - values.begin());
    std::array<std::size_t, Rank> index{};
    for (std::size_t r = Rank; r-- > 0;) {
      index[r] = flat % extents_[r];
      flat /= extents_[r];
    }
    const char* kind = std::isnan(*bad) ? "nan" : (*bad > 0 ? "inf" : "-inf");
    raise(errc::invalid_argument,
          fmt::format("{} has a non-finite value ({}) at {}", what, kind, index), where);
  }

private:
  T* data_ = nullptr;
  std::array<std::size_t, Rank> extents_{};
};

/// A view of device memory, what the CUDA cache takes.
template <class T, std::size_t Rank>
using cuda_view = tensor_view<T, Rank, cuda_space>;

/// One input's leading extent (its rows), for agreed_rows.
struct named_rows {
  std::string_view name;
  std::size_t rows = 0;
};

/// The row count the inputs of `call` share. Throws errc::shape_mismatch unless all agree, naming
/// the inputs that differ from the majority (on a tie, the count of the earlier input), so a q one
/// row short is blamed on q and not on whichever tensor was compared with it.
[[nodiscard]] inline auto agreed_rows(std::string_view call, std::span<const named_rows> inputs,
                                      std::source_location where = std::source_location::current())
    -> std::size_t {
  std::size_t best = 0;
  std::size_t best_votes = 0;
  for (const auto& a : inputs) {
    std::size_t votes = 0;
    for (const auto& b : inputs) {
      votes += b.rows == a.rows ? 1 : 0;
    }
    if (votes > best_votes) {
      best = a.rows;
      best_votes = votes;
    }
  }
  if (best_votes == inputs.size()) [[likely]] {
    return best;
  }
  // Plain loops and appends: a std::count_if + fmt::format_to(std::back_inserter) version brought
  // `long double` into nvcc's device-code checks of the CUDA TUs that include the host cache
  // (warning 20208, an error there).
  std::string wrong;    // "prefill q has 4 rows, prefill out has 4 rows"
  std::string agreeing; // "k, v, classes"
  for (const auto& a : inputs) {
    std::string& list = a.rows == best ? agreeing : wrong;
    if (!list.empty()) {
      list += ", ";
    }
    list += a.rows == best ? std::string(a.name)
                           : fmt::format("{} {} has {} rows", call, a.name, a.rows);
  }
  raise(errc::shape_mismatch,
        fmt::format("{}, but {} {} {}", wrong, agreeing, best_votes == 1 ? "has" : "have", best),
        where);
}

} // namespace kvsieve
