// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Storage element types for keys and values: float, bfloat16 and IEEE half. Arithmetic is always
/// done in float; these types only convert (round to nearest even) at load and store.

#include <bit>
#include <concepts>
#include <cstdint>
#include <type_traits>

#include <kvsieve/core/config.hpp>

namespace kvsieve {

/// bfloat16: the top 16 bits of an IEEE float.
struct bfloat16 {
  std::uint16_t bits = 0;

  KVSIEVE_HOST_DEVICE static constexpr auto from_float(float f) noexcept -> bfloat16 {
    auto u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7f800000U) == 0x7f800000U && (u & 0x007fffffU) != 0) {
      return bfloat16{static_cast<std::uint16_t>((u >> 16U) | 0x0040U)}; // keep NaN quiet
    }
    u += 0x7fffU + ((u >> 16U) & 1U); // round to nearest, ties to even
    return bfloat16{static_cast<std::uint16_t>(u >> 16U)};
  }
  [[nodiscard]] KVSIEVE_HOST_DEVICE constexpr auto to_float() const noexcept -> float {
    return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16U);
  }
};

/// IEEE 754 binary16.
struct half {
  std::uint16_t bits = 0;

  KVSIEVE_HOST_DEVICE static constexpr auto from_float(float f) noexcept -> half {
    const auto u = std::bit_cast<std::uint32_t>(f);
    const auto sign = static_cast<std::uint16_t>((u >> 16U) & 0x8000U);
    const std::uint32_t abs = u & 0x7fffffffU;
    if (abs >= 0x7f800000U) { // inf or NaN
      return half{static_cast<std::uint16_t>(sign | 0x7c00U | (abs > 0x7f800000U ? 0x200U : 0U))};
    }
    if (abs >= 0x477ff000U) { // rounds to >= 65520: overflow to inf
      return half{static_cast<std::uint16_t>(sign | 0x7c00U)};
    }
    if (abs < 0x38800000U) { // below the smallest normal half (2^-14): subnormal or zero
      const auto shift = 126U - (abs >> 23U);
      if (shift > 24U) {
        return half{sign};
      }
      const std::uint32_t mant = (abs & 0x007fffffU) | 0x00800000U;
      std::uint32_t h = mant >> (shift);
      const std::uint32_t rem = mant & ((1U << shift) - 1U);
      const std::uint32_t halfway = 1U << (shift - 1U);
      if (rem > halfway || (rem == halfway && (h & 1U) != 0)) {
        ++h;
      }
      return half{static_cast<std::uint16_t>(sign | h)};
    }
    std::uint32_t h = ((abs >> 13U) - (112U << 10U)); // rebias exponent 127 -> 15
    const std::uint32_t rem = abs & 0x1fffU;
    if (rem > 0x1000U || (rem == 0x1000U && (h & 1U) != 0)) {
      ++h;
    }
    return half{static_cast<std::uint16_t>(sign | h)};
  }

  [[nodiscard]] KVSIEVE_HOST_DEVICE constexpr auto to_float() const noexcept -> float {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000U) << 16U;
    const std::uint32_t exp = (bits >> 10U) & 0x1fU;
    std::uint32_t mant = bits & 0x3ffU;
    if (exp == 0x1fU) {
      return std::bit_cast<float>(sign | 0x7f800000U | (mant << 13U));
    }
    if (exp == 0) {
      if (mant == 0) {
        return std::bit_cast<float>(sign);
      }
      std::uint32_t e = 113; // normalise the subnormal
      while ((mant & 0x400U) == 0) {
        mant <<= 1U;
        --e;
      }
      return std::bit_cast<float>(sign | (e << 23U) | ((mant & 0x3ffU) << 13U));
    }
    return std::bit_cast<float>(sign | ((exp + 112U) << 23U) | (mant << 13U));
  }
};

/// The element types a store may hold.
template <class T>
concept storage_element =
    std::same_as<T, float> || std::same_as<T, bfloat16> || std::same_as<T, half>;

template <storage_element T>
KVSIEVE_HOST_DEVICE constexpr auto load_float(T x) noexcept -> float {
  if constexpr (std::same_as<T, float>) {
    return x;
  } else {
    return x.to_float();
  }
}

template <storage_element T>
KVSIEVE_HOST_DEVICE constexpr auto store_as(float f) noexcept -> T {
  if constexpr (std::same_as<T, float>) {
    return f;
  } else {
    return T::from_float(f);
  }
}

} // namespace kvsieve
