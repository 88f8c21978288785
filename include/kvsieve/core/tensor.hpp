// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// tensor_view<T, Rank>: a non-owning, row-major, contiguous view with named extents. It is what
/// the cache's prefill/decode take, so every shape is checked at the API boundary with a message
/// that names the tensor (C++20 has no std::mdspan; this is the small part of it we need).

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <kvsieve/core/error.hpp>

namespace kvsieve {

template <class T, std::size_t Rank>
class tensor_view {
public:
  using element_type = T;
  static constexpr std::size_t rank = Rank;

  constexpr tensor_view() = default;
  constexpr tensor_view(T* data, std::array<std::size_t, Rank> extents) noexcept
      : data_(data), extents_(extents) {}

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

private:
  T* data_ = nullptr;
  std::array<std::size_t, Rank> extents_{};
};

} // namespace kvsieve
