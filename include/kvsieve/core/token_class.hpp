// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The per-token class bits that FastGen's special and punctuation policies read (FastGen §3.4).

#include <cstdint>

#include <kvsieve/core/config.hpp>

namespace kvsieve {

/// A bitmask: bit 0 special (BOS, EOS, chat markers, ...), bit 1 punctuation.
enum class token_class : std::uint8_t {
  none = 0,
  special = 1U << 0U,
  punctuation = 1U << 1U,
};

KVSIEVE_HOST_DEVICE constexpr auto operator|(token_class a, token_class b) noexcept -> token_class {
  return static_cast<token_class>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}

KVSIEVE_HOST_DEVICE constexpr auto operator&(token_class a, token_class b) noexcept -> token_class {
  return static_cast<token_class>(static_cast<std::uint8_t>(a) & static_cast<std::uint8_t>(b));
}

/// True when `c` carries every bit of `bits`.
KVSIEVE_HOST_DEVICE constexpr auto has(token_class c, token_class bits) noexcept -> bool {
  return (c & bits) == bits && bits != token_class::none;
}

} // namespace kvsieve
