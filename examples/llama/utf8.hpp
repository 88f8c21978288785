// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::to_valid_utf8: text a model generated, made well-formed UTF-8 for a terminal or JSON.
/// A byte-level or byte-fallback model can emit any byte sequence; each ill-formed part becomes
/// U+FFFD, one per *maximal subpart* (Unicode 15 §3.9, "U+FFFD Substitution of Maximal
/// Subparts"), which is what Python's bytes.decode("utf-8", "replace") and the WHATWG decoder do.
/// Well-formed input comes back unchanged. llama::for_terminal additionally hides the control
/// characters a model may emit (ESC starts terminal commands). Applied piece by piece to what
/// llama::stream_decoder returns, it gives the same text as applied to the whole: the decoder
/// never ends a piece inside a sequence that more bytes could still complete.

#include <cstddef>
#include <string>
#include <string_view>

namespace llama {

/// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";

/// `bytes` with every ill-formed subsequence replaced by U+FFFD (see above). O(n).
[[nodiscard]] inline auto to_valid_utf8(std::string_view bytes) -> std::string {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80U) {
      out.push_back(bytes[i++]);
      continue;
    }
    // Unicode Table 3-7: continuation bytes needed, and the range of the first one (the others
    // are 80..BF); the narrow first ranges exclude overlong forms, surrogates and > U+10FFFF.
    std::size_t need = 0;
    unsigned lo = 0x80U;
    unsigned hi = 0xBFU;
    if (lead >= 0xC2U && lead <= 0xDFU) {
      need = 1;
    } else if (lead == 0xE0U) {
      need = 2;
      lo = 0xA0U;
    } else if (lead == 0xEDU) {
      need = 2;
      hi = 0x9FU;
    } else if (lead >= 0xE1U && lead <= 0xEFU) {
      need = 2;
    } else if (lead == 0xF0U) {
      need = 3;
      lo = 0x90U;
    } else if (lead >= 0xF1U && lead <= 0xF3U) {
      need = 3;
    } else if (lead == 0xF4U) {
      need = 3;
      hi = 0x8FU;
    } else { // 80..C1, F5..FF never start a sequence
      out += replacement_character;
      ++i;
      continue;
    }
    std::size_t k = 1; // bytes of the sequence seen so far, lead included
    for (; k <= need && i + k < bytes.size(); ++k) {
      const auto c = static_cast<unsigned char>(bytes[i + k]);
      if (c < (k == 1 ? lo : 0x80U) || c > (k == 1 ? hi : 0xBFU)) {
        break;
      }
    }
    if (k == need + 1) {
      out.append(bytes.substr(i, k));
    } else {
      out += replacement_character; // the maximal subpart [i, i + k); resume at the byte after
    }
    i += k;
  }
  return out;
}

/// Well-formed UTF-8 `text` with C0 controls other than tab, newline and carriage return, DEL,
/// and C1 controls (U+0080..U+009F, some of which terminals obey) replaced by U+FFFD: safe to
/// print on a terminal. O(n).
[[nodiscard]] inline auto for_terminal(std::string_view text) -> std::string {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool c0 = (c < 0x20U && c != '\t' && c != '\n' && c != '\r') || c == 0x7FU;
    const bool c1 = c == 0xC2U && i + 1 < text.size() &&
                    static_cast<unsigned char>(text[i + 1]) >= 0x80U &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9FU;
    if (c0 || c1) {
      out += replacement_character;
      i += c1 ? 1 : 0;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

} // namespace llama
