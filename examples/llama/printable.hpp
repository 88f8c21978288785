// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::detail::printable: text taken from an input file (a tensor name, a JSON string, a
/// SentencePiece piece, a library's message quoting one), made safe to put in an error message:
/// bounded in length and without control characters that a terminal would act on.

#include <cstddef>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace llama::detail {

/// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong
/// forms, no surrogates, nothing past U+10FFFF), or 0.
[[nodiscard]] constexpr auto utf8_sequence_length(std::string_view s) noexcept -> std::size_t {
  if (s.empty()) {
    return 0;
  }
  const auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned b = at(0);
  std::size_t len = 0;
  unsigned lo = 0x80; // the range of the second byte
  unsigned hi = 0xBF;
  if (b < 0x80U) {
    return 1;
  } else if (b >= 0xC2U && b <= 0xDFU) {
    len = 2;
  } else if (b >= 0xE0U && b <= 0xEFU) {
    len = 3;
    lo = b == 0xE0U ? 0xA0U : lo;
    hi = b == 0xEDU ? 0x9FU : hi;
  } else if (b >= 0xF0U && b <= 0xF4U) {
    len = 4;
    lo = b == 0xF0U ? 0x90U : lo;
    hi = b == 0xF4U ? 0x8FU : hi;
  } else {
    return 0;
  }
  if (s.size() < len || at(1) < lo || at(1) > hi) {
    return 0;
  }
  for (std::size_t k = 2; k < len; ++k) {
    if ((at(k) & 0xC0U) != 0x80U) {
      return 0;
    }
  }
  return len;
}

/// At most about `max_bytes` of `text`, cut between characters, then "..." when cut. Printable
/// ASCII and well-formed UTF-8 are kept; every other byte (C0 and C1 controls, DEL, malformed
/// UTF-8) is written as \xNN.
[[nodiscard]] inline auto printable(std::string_view text, std::size_t max_bytes = 120)
    -> std::string {
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && out.size() < max_bytes) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::size_t len = utf8_sequence_length(text.substr(i, 4));
    const bool c1_control =
        len == 2 && b == 0xC2U && static_cast<unsigned char>(text[i + 1]) < 0xA0U;
    if (len == 1 && b >= 0x20U && b != 0x7FU) {
      out += static_cast<char>(b);
    } else if (len > 1 && !c1_control) {
      out.append(text.substr(i, len));
    } else {
      len = 1;
      out += fmt::format("\\x{:02x}", b);
    }
    i += len;
  }
  if (i < text.size()) {
    out += "...";
  }
  return out;
}

} // namespace llama::detail
