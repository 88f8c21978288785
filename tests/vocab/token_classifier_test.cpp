// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// Special and punctuation classes for raw-byte, SentencePiece and byte-level BPE vocabularies
// (fastgen-spec section 3), by hand-checked pieces.
#include <common/catch.hpp>

#include <string>
#include <vector>

#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;
constexpr auto N = token_class::none;
constexpr auto S = token_class::special;
constexpr auto P = token_class::punctuation;

// GPT-2's byte-to-unicode alphabet, written independently of the library: the byte-level piece
// for a byte string.
auto byte_level_piece(const std::string& bytes) -> std::string {
  std::vector<int> cps(256);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    cps[static_cast<std::size_t>(b)] = printable ? b : 256 + extra++;
  }
  std::string out;
  for (unsigned char b : bytes) {
    const int cp = cps[b];
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}
} // namespace

TEST_CASE("raw bytes: the 32 ASCII punctuation bytes, declared specials", "[vocab]") {
  const std::vector<std::int32_t> specials{256, 257};
  const auto c = token_classifier::for_bytes(259, 0, specials);
  CHECK(c('.') == P);
  CHECK(c('$') == P);
  CHECK(c('~') == P);
  CHECK(c('a') == N);
  CHECK(c('7') == N);
  CHECK(c(' ') == N);
  CHECK(c('\n') == N);
  CHECK(c(0xC2) == N); // no non-ASCII byte is punctuation
  CHECK(c(256) == S);
  CHECK(c(257) == S);
  CHECK(c(258) == N);
  CHECK(c.count(P) == 32);
  CHECK(c.count(S) == 2);
  const auto ws = token_classifier::for_bytes(259, 0, specials, {.whitespace_is_punctuation = true});
  CHECK(ws(' ') == P);
  CHECK(ws('\n') == P);
  CHECK(ws.count(P) == 32 + 6);
  const auto offset = token_classifier::for_bytes(300, 3, specials);
  CHECK(offset(3 + '.') == P);
  CHECK(offset(3 + 'a') == N);
  CHECK(offset('.') == P); // id 46 is byte 43, '+'
  CHECK(offset(2) == N);  // ids below the offset are not bytes
}

TEST_CASE("SentencePiece pieces", "[vocab]") {
  const std::vector<std::string> pieces{
      "<unk>", "<s>", "</s>", "\xE2\x96\x81.", ".", "\xE2\x96\x81the", "\xE2\x96\x81",
      "\xE2\x80\x94" /* em dash, Pd */, "\xC2\xAB" /* guillemet, Pi */, "$", "\xE2\x82\xAC" /* euro, Sc */,
      "<0x2E>", "<0xC3>", "\xE2\x96\x81...", ".a", "\xE2\x96\x81\xE2\x96\x81", "[", "INST", "]",
      "\xE3\x80\x82" /* ideographic full stop */, "\xFF"};
  const std::vector<std::int32_t> specials{0, 1, 2};
  const auto c = token_classifier::from_pieces(pieces, vocab_kind::sentencepiece, specials);
  const std::vector<token_class> expect{S, S, S, P, P, N, N, P, P, P, N, P, N, P, N, N, P, N, P, P, N};
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    INFO("piece " << i << " '" << pieces[i] << "'");
    CHECK(c(static_cast<std::int32_t>(i)) == expect[i]);
  }
  const auto ws = token_classifier::from_pieces(pieces, vocab_kind::sentencepiece, specials,
                                                {.whitespace_is_punctuation = true});
  CHECK(ws(6) == P);
  CHECK(ws(15) == P);
  CHECK(ws(5) == N);
}

TEST_CASE("byte-level BPE pieces", "[vocab]") {
  const std::vector<std::string> pieces{
      byte_level_piece("<|endoftext|>"), byte_level_piece(" ."), byte_level_piece("."),
      byte_level_piece(" the"), byte_level_piece("\n"), byte_level_piece("\xE2"),
      byte_level_piece("\xE2\x80\x94"), byte_level_piece(" \xE2\x80\x94"), byte_level_piece("),"),
      byte_level_piece("\t\t"), byte_level_piece("a.")};
  const std::vector<std::int32_t> specials{0};
  const auto c = token_classifier::from_pieces(pieces, vocab_kind::byte_level_bpe, specials);
  CHECK(pieces[1] == "\xC4\xA0."); // "Ġ."
  const std::vector<token_class> expect{S, P, P, N, N, N, P, P, P, N, N};
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    INFO("piece " << i);
    CHECK(c(static_cast<std::int32_t>(i)) == expect[i]);
  }
  const auto ws = token_classifier::from_pieces(pieces, vocab_kind::byte_level_bpe, specials,
                                                {.whitespace_is_punctuation = true});
  CHECK(ws(4) == P);
  CHECK(ws(9) == P);
  CHECK(ws(3) == N);
}

TEST_CASE("multi-token special markers are matched contiguously", "[vocab]") {
  const std::vector<std::string> pieces{"<s>", "[", "INST", "]", "\xE2\x96\x81hi", "."};
  const std::vector<std::int32_t> specials{0};
  auto c = token_classifier::from_pieces(pieces, vocab_kind::sentencepiece, specials);
  c.add_special_sequence({1, 2, 3});
  const std::vector<std::int32_t> ids{0, 1, 2, 3, 4, 5, 1, 4, 3, 2, 1, 2, 3};
  CHECK(c.classify(ids) == std::vector<token_class>{S, S, S, S, N, P, P, N, P, N, S, S, S});
  CHECK(c(1) == P); // alone, "[" is still punctuation
  c.add_special_sequence({4});
  CHECK(c(4) == S);
  CHECK_THROWS_AS(c.add_special_sequence({}), kvsieve::error);
  CHECK_THROWS_AS(c.add_special_sequence({1, 99}), kvsieve::error);
}
