// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// token_classifier: maps every vocabulary id to its token_class once per tokenizer
/// (fastgen-spec §3), and classifies prompts, matching multi-token special markers contiguously.
///  - special: the ids the tokenizer declares special (BOS, EOS, PAD/UNK, chat markers, ...);
///  - punctuation: a piece, minus one leading "▁" (SentencePiece) or leading whitespace
///    (byte-level BPE), that is non-empty and made only of Unicode P* characters or ASCII
///    !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ ; on a raw-byte vocabulary, the 32 ASCII punctuation
///    bytes. A byte-level token that is not valid UTF-8 on its own is not punctuation.
///  - whitespace-only tokens are not punctuation (DEFAULT); classifier_options can count them.

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/token_class.hpp>
#include <kvsieve/vocab/unicode_punctuation.hpp>

namespace kvsieve {

/// How a vocabulary's pieces spell their bytes.
enum class vocab_kind {
  sentencepiece,  ///< "▁" for a leading space, "<0xNN>" byte-fallback pieces
  byte_level_bpe, ///< GPT-2's byte-to-unicode alphabet ("Ġ" for a space)
};

struct classifier_options {
  bool whitespace_is_punctuation = false; ///< OPTION (cold-compress); DEFAULT false
};

namespace detail {

[[nodiscard]] constexpr auto is_ascii_punctuation(char32_t c) noexcept -> bool {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

[[nodiscard]] constexpr auto is_space(char32_t c) noexcept -> bool {
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || c == U'\v' || c == U'\f' ||
         c == 0x2581; // SentencePiece's "▁"
}

/// Decodes UTF-8; std::nullopt when the bytes are not valid UTF-8 (overlong, surrogate, cut).
[[nodiscard]] inline auto decode_utf8(std::string_view s) -> std::optional<std::u32string> {
  std::u32string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    char32_t c = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      n = 1, c = b0;
    } else if ((b0 & 0xE0U) == 0xC0U) {
      n = 2, c = b0 & 0x1FU, min = 0x80;
    } else if ((b0 & 0xF0U) == 0xE0U) {
      n = 3, c = b0 & 0x0FU, min = 0x800;
    } else if ((b0 & 0xF8U) == 0xF0U) {
      n = 4, c = b0 & 0x07U, min = 0x10000;
    } else {
      return std::nullopt;
    }
    if (i + n > s.size()) {
      return std::nullopt;
    }
    for (std::size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0U) != 0x80U) {
        return std::nullopt;
      }
      c = (c << 6U) | (b & 0x3FU);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
      return std::nullopt;
    }
    out.push_back(c);
    i += n;
  }
  return out;
}

/// The punctuation test on decoded text (after the leading marker was stripped).
[[nodiscard]] inline auto text_class(const std::u32string& text, bool had_space,
                                     const classifier_options& opt) -> token_class {
  const bool all_space =
      std::all_of(text.begin(), text.end(), [](char32_t c) { return is_space(c); });
  if (text.empty() || all_space) {
    return opt.whitespace_is_punctuation && (had_space || !text.empty()) ? token_class::punctuation
                                                                        : token_class::none;
  }
  const bool punct = std::all_of(text.begin(), text.end(), [](char32_t c) {
    return is_ascii_punctuation(c) || is_unicode_punctuation(c);
  });
  return punct ? token_class::punctuation : token_class::none;
}

/// GPT-2's byte-to-unicode alphabet, inverted: code point -> byte (-1 when not in it).
[[nodiscard]] inline auto byte_level_decoder() -> std::array<std::int16_t, 324> {
  std::array<std::int16_t, 324> inv{};
  inv.fill(-1);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : 256 + extra++;
    inv[static_cast<std::size_t>(cp)] = static_cast<std::int16_t>(b);
  }
  return inv;
}

} // namespace detail

class token_classifier {
public:
  token_classifier() = default;

  /// A raw-byte vocabulary of `vocab_size` ids whose ids [byte_offset, byte_offset + 256) are
  /// the bytes 0..255; `special_ids` are special. Throws errc::invalid_argument when the byte
  /// range or a special id falls outside the vocabulary.
  [[nodiscard]] static auto for_bytes(std::int32_t vocab_size, std::int32_t byte_offset,
                                      std::span<const std::int32_t> special_ids,
                                      classifier_options opt = {}) -> token_classifier {
    expects(byte_offset >= 0 && vocab_size >= byte_offset + 256, errc::invalid_argument, [&] {
      return fmt::format("byte ids [{}, {}) do not fit a vocabulary of {}", byte_offset,
                         byte_offset + 256, vocab_size);
    });
    token_classifier c;
    c.classes_.assign(static_cast<std::size_t>(vocab_size), token_class::none);
    for (int b = 0; b < 256; ++b) {
      const auto ch = static_cast<char32_t>(b);
      const bool punct = detail::is_ascii_punctuation(ch) ||
                         (opt.whitespace_is_punctuation && ch < 0x80 && detail::is_space(ch));
      c.classes_[static_cast<std::size_t>(byte_offset + b)] =
          punct ? token_class::punctuation : token_class::none;
    }
    for (auto id : special_ids) {
      c.add_special(id);
    }
    return c;
  }

  /// A vocabulary given by its pieces (pieces[id]). Throws errc::invalid_argument when a special
  /// id falls outside the vocabulary.
  [[nodiscard]] static auto from_pieces(std::span<const std::string> pieces, vocab_kind kind,
                                        std::span<const std::int32_t> special_ids,
                                        classifier_options opt = {}) -> token_classifier {
    token_classifier c;
    c.classes_.resize(pieces.size());
    const auto inv = detail::byte_level_decoder();
    for (std::size_t id = 0; id < pieces.size(); ++id) {
      c.classes_[id] = kind == vocab_kind::sentencepiece ? sentencepiece_class(pieces[id], opt)
                                                         : byte_level_class(pieces[id], inv, opt);
    }
    for (auto id : special_ids) {
      c.add_special(id);
    }
    return c;
  }

  /// Marks `id` special. Throws errc::invalid_argument outside the vocabulary.
  void add_special(std::int32_t id) {
    check_id(id);
    classes_[static_cast<std::size_t>(id)] = token_class::special;
  }

  /// A marker that the tokenizer spells with several ids (e.g. "[INST]"): classify() marks every
  /// token of each contiguous occurrence special. Throws errc::invalid_argument for an empty
  /// sequence or an id outside the vocabulary.
  void add_special_sequence(std::vector<std::int32_t> ids) {
    expects(!ids.empty(), errc::invalid_argument, "empty special marker sequence");
    for (auto id : ids) {
      check_id(id);
    }
    if (ids.size() == 1) {
      add_special(ids.front());
    } else {
      sequences_.push_back(std::move(ids));
    }
  }

  /// The class of one id. Throws errc::invalid_argument outside the vocabulary.
  [[nodiscard]] auto operator()(std::int32_t id) const -> token_class {
    check_id(id);
    return classes_[static_cast<std::size_t>(id)];
  }

  /// Classes of a token sequence, multi-token markers included. O(n * marker lengths).
  [[nodiscard]] auto classify(std::span<const std::int32_t> ids) const
      -> std::vector<token_class> {
    std::vector<token_class> out(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      out[i] = (*this)(ids[i]);
    }
    for (const auto& seq : sequences_) {
      for (std::size_t i = 0; i + seq.size() <= ids.size(); ++i) {
        if (std::equal(seq.begin(), seq.end(), ids.begin() + static_cast<std::ptrdiff_t>(i))) {
          std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(i), seq.size(),
                      token_class::special);
        }
      }
    }
    return out;
  }

  [[nodiscard]] auto vocab_size() const noexcept -> std::int32_t {
    return static_cast<std::int32_t>(classes_.size());
  }
  /// How many ids carry every bit of `bits` (log it: it sets the cost of C_special, C_punct).
  [[nodiscard]] auto count(token_class bits) const -> std::int32_t {
    return static_cast<std::int32_t>(
        std::count_if(classes_.begin(), classes_.end(), [&](token_class c) { return has(c, bits); }));
  }

private:
  void check_id(std::int32_t id) const {
    expects(id >= 0 && id < vocab_size(), errc::invalid_argument, [&] {
      return fmt::format("token id {} outside the vocabulary [0, {})", id, vocab_size());
    });
  }

  static auto sentencepiece_class(std::string_view piece, const classifier_options& opt)
      -> token_class {
    // Byte-fallback pieces "<0xNN>" stand for one byte.
    if (piece.size() == 6 && piece.starts_with("<0x") && piece.ends_with('>')) {
      const auto hex = [](char ch) -> int {
        if (ch >= '0' && ch <= '9') {
          return ch - '0';
        }
        if (ch >= 'A' && ch <= 'F') {
          return ch - 'A' + 10;
        }
        return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
      };
      const int hi = hex(piece[3]);
      const int lo = hex(piece[4]);
      if (hi >= 0 && lo >= 0) {
        const auto b = static_cast<char32_t>(hi * 16 + lo);
        if (b >= 0x80) {
          return token_class::none; // a lone non-ASCII byte is not valid UTF-8
        }
        return detail::text_class(std::u32string(1, b), false, opt);
      }
    }
    constexpr std::string_view marker = "\xE2\x96\x81"; // U+2581 "▁"
    const bool had_space = piece.starts_with(marker);
    if (had_space) {
      piece.remove_prefix(marker.size());
    }
    const auto text = detail::decode_utf8(piece);
    return text ? detail::text_class(*text, had_space, opt) : token_class::none;
  }

  static auto byte_level_class(std::string_view piece, const std::array<std::int16_t, 324>& inv,
                               const classifier_options& opt) -> token_class {
    const auto chars = detail::decode_utf8(piece);
    if (!chars) {
      return token_class::none;
    }
    std::string bytes;
    for (char32_t c : *chars) {
      if (c >= inv.size() || inv[c] < 0) {
        return token_class::none; // not in the byte-level alphabet
      }
      bytes.push_back(static_cast<char>(inv[c]));
    }
    const auto first = bytes.find_first_not_of(" \t\n\r\v\f");
    const bool had_space = first != 0;
    const auto text = detail::decode_utf8(first == std::string::npos ? std::string_view{}
                                                                     : std::string_view(bytes).substr(first));
    return text ? detail::text_class(*text, had_space && !bytes.empty(), opt) : token_class::none;
  }

  std::vector<token_class> classes_;
  std::vector<std::vector<std::int32_t>> sequences_;
};

} // namespace kvsieve
