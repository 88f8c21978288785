// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// llama::to_valid_utf8 and llama::for_terminal: hand-checked cases (Unicode 15 Table 3-8 and
// Python 3.11's bytes.decode("utf-8", "replace")), a brute-force reference (decoding by RFC 3629
// arithmetic, prefixes from every code point's encoding) on random byte strings, and piecewise
// use on what stream_decoder returns.
#include <common/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <llama/tokenizer.hpp>
#include <llama/utf8.hpp>

namespace {

using namespace std::string_literals;
const std::string fffd = "\xEF\xBF\xBD";

// Concatenation by append (GCC 12's -Wrestrict misfires on chains of operator+).
auto cat(std::initializer_list<std::string_view> parts) -> std::string {
  std::string s;
  for (const auto p : parts) {
    s.append(p);
  }
  return s;
}

auto repeat_fffd(int n) -> std::string {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += fffd;
  }
  return s;
}

// UTF-8 by the arithmetic of RFC 3629, independent of the table in utf8.hpp.
auto encode(std::uint32_t cp) -> std::string {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Whether bytes[0, n) is one well-formed sequence, by decoding (RFC 3629): the lead's high
// bits give the length, the rest are 10xxxxxx, and the value is a scalar value (no surrogate,
// at most U+10FFFF) that needs exactly n bytes (no overlong form).
auto well_formed(std::string_view bytes) -> bool {
  const auto b = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]));
  };
  const std::size_t n = bytes.size();
  const std::size_t len = b(0) < 0x80 ? 1 : (b(0) >> 5) == 0x6 ? 2 : (b(0) >> 4) == 0xE ? 3
                                         : (b(0) >> 3) == 0x1E ? 4 : 0;
  if (len != n) {
    return false;
  }
  std::uint32_t cp = n == 1 ? b(0) : b(0) & (0x7FU >> n);
  for (std::size_t i = 1; i < n; ++i) {
    if ((b(i) >> 6) != 0x2) {
      return false;
    }
    cp = (cp << 6) | (b(i) & 0x3F);
  }
  const std::uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  return cp >= min[n] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

// Every proper prefix (1-3 bytes) of the encoding of some scalar value, as bits indexed by the
// prefix's bytes.
struct prefixes {
  std::vector<bool> of[4]; // of[k]: prefixes of k bytes, index = bytes as a big-endian number
  prefixes() : of{{}, std::vector<bool>(1U << 8), std::vector<bool>(1U << 16),
                  std::vector<bool>(1U << 24)} {
    for (std::uint32_t cp = 0x80; cp <= 0x10FFFF; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        continue;
      }
      const std::string s = encode(cp);
      std::uint32_t key = 0;
      for (std::size_t k = 1; k < s.size(); ++k) {
        key = (key << 8) | static_cast<unsigned char>(s[k - 1]);
        of[k][key] = true;
      }
    }
  }
  [[nodiscard]] auto contains(std::string_view p) const -> bool {
    std::uint32_t key = 0;
    for (const char c : p) {
      key = (key << 8) | static_cast<unsigned char>(c);
    }
    return p.size() < 4 && of[p.size()][key];
  }
};

auto all_prefixes() -> const prefixes& {
  static const prefixes p;
  return p;
}

// The definition itself: at each position take the longest run of bytes that is a well-formed
// sequence or a prefix of one; copy a whole sequence, replace anything else (at least one byte)
// by one U+FFFD.
auto reference(std::string_view in) -> std::string {
  const auto& pre = all_prefixes();
  std::string out;
  std::size_t i = 0;
  while (i < in.size()) {
    std::size_t k = 0;
    bool whole = false;
    for (std::size_t n = 1; n <= 4 && i + n <= in.size(); ++n) {
      const std::string_view part = in.substr(i, n);
      if (well_formed(part)) {
        k = n;
        whole = true;
        break;
      }
      if (!pre.contains(part)) {
        break;
      }
      k = n;
    }
    if (whole) {
      out.append(in.substr(i, k));
    } else {
      out += fffd;
      k = std::max<std::size_t>(k, 1);
    }
    i += k;
  }
  return out;
}

// Random bytes, most of them the ones that make sequences interesting.
auto random_bytes(std::mt19937& rng, std::size_t max_len) -> std::string {
  static constexpr unsigned char interesting[] = {'a',  '\n', 0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F,
                                                  0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
                                                  0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4,
                                                  0xF5, 0xF8, 0xFE, 0xFF};
  std::uniform_int_distribution<std::size_t> len(0, max_len);
  std::uniform_int_distribution<int> coin(0, 3);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(interesting) - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(len(rng), '\0');
  for (auto& c : s) {
    c = static_cast<char>(coin(rng) == 0 ? byte(rng) : interesting[pick(rng)]);
  }
  return s;
}

} // namespace

TEST_CASE("to_valid_utf8 keeps well-formed text unchanged", "[llama][utf8]") {
  for (const auto& s : {""s, "plain ASCII\n\t"s, "h\xC3\xA9llo w\xC3\xB6rld"s,
                              "\xE2\x82\xAC 5"s, "\xF0\x9F\x98\x80"s, "\xC2\x80"s,
                              "\xF4\x8F\xBF\xBF"s, "\xED\x9F\xBF"s, "a\0b"s}) {
    CHECK(llama::to_valid_utf8(s) == s);
  }
}

TEST_CASE("to_valid_utf8 replaces each maximal subpart as Unicode and Python do",
          "[llama][utf8]") {
  // Unicode 15, Table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
  CHECK(llama::to_valid_utf8("a\xF1\x80\x80\xE1\x80\xC2" "b\x80" "c\x80\xBF" "d") ==
        cat({"a", repeat_fffd(3), "b", fffd, "c", repeat_fffd(2), "d"}));
  // Python 3.11, bytes.decode("utf-8", "replace").
  CHECK(llama::to_valid_utf8("\xE0\x80\x80") == repeat_fffd(3)); // overlong
  CHECK(llama::to_valid_utf8("\xED\xA0\x80") == repeat_fffd(3)); // surrogate D800
  CHECK(llama::to_valid_utf8("\xF4\x90\x80\x80") == repeat_fffd(4)); // > U+10FFFF
  CHECK(llama::to_valid_utf8("\xC0\xAF") == repeat_fffd(2));
  CHECK(llama::to_valid_utf8("\xF0\x9F\x98") == fffd); // a cut 4-byte sequence: one
  CHECK(llama::to_valid_utf8("\xE2\x82") == fffd);
  CHECK(llama::to_valid_utf8("\xFF\xFE") == repeat_fffd(2));
  CHECK(llama::to_valid_utf8("\xF8\x88\x80\x80\x80") == repeat_fffd(5));
  CHECK(llama::to_valid_utf8("x\xE2\x82y") == cat({"x", fffd, "y"}));
}

TEST_CASE("to_valid_utf8 equals the brute-force definition on random bytes", "[llama][utf8]") {
  std::mt19937 rng(20260);
  for (int i = 0; i < 20000; ++i) {
    const std::string in = random_bytes(rng, 12);
    const std::string out = llama::to_valid_utf8(in);
    REQUIRE(out == reference(in));
    REQUIRE(llama::to_valid_utf8(out) == out); // the output is well-formed
  }
}

TEST_CASE("to_valid_utf8 of stream_decoder's pieces equals it of the whole text",
          "[llama][utf8]") {
  // What kvsieve-generate prints piece by piece is what --json writes in one string.
  const auto tok = llama::tokenizer::bytes(259, 256, {257});
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const std::string bytes = random_bytes(rng, 24);
    auto stream = tok.streamer();
    std::string pieces;
    for (const char c : bytes) {
      pieces += llama::to_valid_utf8(stream.decode_next(static_cast<unsigned char>(c)));
    }
    pieces += llama::to_valid_utf8(stream.flush());
    REQUIRE(pieces == llama::to_valid_utf8(bytes));
  }
}

TEST_CASE("for_terminal hides control characters a terminal would obey", "[llama][utf8]") {
  CHECK(llama::for_terminal("a\tb\nc\r\n") == "a\tb\nc\r\n");
  CHECK(llama::for_terminal("\x1b[2J") == cat({fffd, "[2J"})); // ESC: clear screen
  CHECK(llama::for_terminal("x\0y"s) == cat({"x", fffd, "y"}));
  CHECK(llama::for_terminal("\x7f") == fffd);
  CHECK(llama::for_terminal("\xC2\x9B" "31m") == cat({fffd, "31m"})); // C1 CSI
  CHECK(llama::for_terminal("\xC2\xA0\xC3\xA9\xE2\x80\x9B") == "\xC2\xA0\xC3\xA9\xE2\x80\x9B");
}
