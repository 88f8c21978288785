// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// bfloat16 and half against independent references: the compiler's _Float16 for half, and a
// nearest-of-two-neighbours search in double for bfloat16.
#include <common/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include <kvsieve/core/numeric.hpp>

using kvsieve::bfloat16;
using kvsieve::half;

namespace {
auto bf_reference(float f) -> std::uint16_t {
  const auto u = std::bit_cast<std::uint32_t>(f);
  const auto lo = static_cast<std::uint16_t>(u >> 16U);
  const auto hi = static_cast<std::uint16_t>(lo + 1U);
  const double dl = std::abs(static_cast<double>(f) - static_cast<double>(bfloat16{lo}.to_float()));
  const double dh = std::abs(static_cast<double>(f) - static_cast<double>(bfloat16{hi}.to_float()));
  if (dl < dh) {
    return lo;
  }
  if (dh < dl) {
    return hi;
  }
  return (lo & 1U) == 0 ? lo : hi;
}
} // namespace

TEST_CASE("bfloat16 rounds to nearest even and keeps specials", "[numeric]") {
  std::mt19937 rng(1);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    if (!std::isfinite(f) || std::abs(f) > 3.3e38F) {
      continue;
    }
    REQUIRE(bfloat16::from_float(f).bits == bf_reference(f));
  }
  CHECK(std::isnan(bfloat16::from_float(std::numeric_limits<float>::quiet_NaN()).to_float()));
  CHECK(bfloat16::from_float(std::numeric_limits<float>::infinity()).to_float() ==
        std::numeric_limits<float>::infinity());
  CHECK(bfloat16::from_float(-0.0F).bits == 0x8000);
}

#if defined(__FLT16_MAX__)
TEST_CASE("half equals the compiler's _Float16 in both directions", "[numeric]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const half h{static_cast<std::uint16_t>(b)};
    const _Float16 ref = std::bit_cast<_Float16>(static_cast<std::uint16_t>(b));
    const float want = static_cast<float>(ref);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(h.to_float()));
    } else {
      REQUIRE(std::bit_cast<std::uint32_t>(h.to_float()) == std::bit_cast<std::uint32_t>(want));
    }
  }
  std::mt19937 rng(2);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 300000; ++i) {
    float f = std::bit_cast<float>(bits(rng));
    if (i % 2 == 0) { // bias half of the draws into half's range
      f = std::ldexp(std::bit_cast<float>((bits(rng) & 0x807fffffU) | 0x3f800000U), i % 40 - 26);
    }
    if (std::isnan(f)) {
      continue;
    }
    const auto want = std::bit_cast<std::uint16_t>(static_cast<_Float16>(f));
    REQUIRE(half::from_float(f).bits == want);
  }
}
#endif // defined(__FLT16_MAX__)
