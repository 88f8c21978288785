// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// llama::tokenizer: the bytes backend by hand, the SentencePiece backend against the Python
// binding (tests/llama/data/spm/expected.json, written with tiny.model by tools/spm_fixture.py),
// stream decoding against decode(), the token classes, and the errors.
#include <common/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>
#include <kvsieve/vocab/token_classifier.hpp>

#include <llama/tokenizer.hpp>

namespace {
namespace fs = std::filesystem;
using ids_t = std::vector<std::int32_t>;

const fs::path spm_dir = fs::path(KVSIEVE_TEST_DATA_DIR) / "spm";

auto expected() -> const nlohmann::json& {
  static const nlohmann::json j = [] {
    std::ifstream in(spm_dir / "expected.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
  }();
  return j;
}

auto tiny() -> const llama::tokenizer& {
  static const auto t = llama::tokenizer::sentencepiece(spm_dir / "tiny.model", 1024);
  return t;
}

auto byte_tok() -> llama::tokenizer { return llama::tokenizer::bytes(512, 256, {257}); }

/// The kvsieve::error `f` throws, if any.
template <class F>
auto error_of(F&& f) -> std::optional<kvsieve::error> {
  try {
    f();
  } catch (const kvsieve::error& e) {
    return e;
  }
  return std::nullopt;
}

/// The errc of the kvsieve::error `f` throws, if any.
template <class F>
auto code_of(F&& f) -> std::optional<kvsieve::errc> {
  const auto e = error_of(std::forward<F>(f));
  return e ? std::optional(e->code()) : std::nullopt;
}

auto is_utf8(const std::string& s) -> bool { return kvsieve::detail::decode_utf8(s).has_value(); }

/// Every decode_next() output of `ids` (after `context`), then flush() as the last element.
auto stream(const llama::tokenizer& t, const ids_t& ids, const ids_t& context = {})
    -> std::vector<std::string> {
  auto s = t.streamer(context);
  std::vector<std::string> out;
  for (auto id : ids) {
    out.push_back(s.decode_next(id));
  }
  out.push_back(s.flush());
  return out;
}

auto concat(const std::vector<std::string>& parts) -> std::string {
  std::string all;
  for (const auto& p : parts) {
    all += p;
  }
  return all;
}

/// A temporary directory removed at scope exit.
struct temp_dir {
  fs::path path = fs::temp_directory_path() /
                  ("kvsieve_tokenizer_test_" + std::to_string(std::random_device{}()));
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
  temp_dir(const temp_dir&) = delete;
  auto operator=(const temp_dir&) -> temp_dir& = delete;
};

} // namespace

TEST_CASE("bytes: encode and decode round-trip ASCII, UTF-8 and invalid bytes",
          "[llama][tokenizer]") {
  const auto t = byte_tok();
  CHECK(t.kind() == "bytes");
  const std::vector<std::string> texts = {"", "Hello, world.",
                                          "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\xA6\x99",
                                          "\xFF\xFE bad \xC3", std::string("nul\0byte", 8)};
  for (const auto& text : texts) {
    const auto ids = t.encode(text, false);
    REQUIRE(ids.size() == text.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      CHECK(ids[i] == static_cast<unsigned char>(text[i]));
    }
    CHECK(t.decode(ids) == text);
  }
}

TEST_CASE("bytes: BOS is added only on request and special ids decode to nothing",
          "[llama][tokenizer]") {
  const auto t = byte_tok();
  CHECK(t.bos_id() == 256);
  CHECK(t.vocab_size() == 512);
  CHECK(t.encode("ab", true) == ids_t{256, 'a', 'b'});
  CHECK(t.encode("", true) == ids_t{256});
  CHECK(t.decode(ids_t{256, 'a', 257, 258, 'b', 300}) == "ab");
  CHECK(t.is_eos(257));
  CHECK_FALSE(t.is_eos(256));
  CHECK_FALSE(t.is_eos('a'));
  const auto multi = llama::tokenizer::bytes(260, 256, {257, 259});
  CHECK(multi.is_eos(259));
}

TEST_CASE("bytes: the stream holds back a cut UTF-8 character", "[llama][tokenizer]") {
  const auto t = byte_tok();
  SECTION("one character at a time") {
    auto s = t.streamer();
    CHECK(s.decode_next(0xC3) == "");
    CHECK(s.decode_next(0xA9) == "\xC3\xA9");
    CHECK(s.decode_next(0xF0) == "");
    CHECK(s.decode_next(0x9F) == "");
    CHECK(s.decode_next(256) == ""); // a special inside a character: decode() skips it too
    CHECK(s.decode_next(0xA6) == "");
    CHECK(s.decode_next(0x99) == "\xF0\x9F\xA6\x99");
    CHECK(s.decode_next('!') == "!");
    CHECK(s.flush() == "");
  }
  SECTION("a lead byte that is not continued comes out with the next byte") {
    auto s = t.streamer();
    CHECK(s.decode_next(0xE2) == "");
    CHECK(s.decode_next('A') == "\xE2" "A");
    CHECK(s.decode_next(0xFF) == "\xFF"); // never a lead: nothing to wait for
  }
  SECTION("flush returns what is held at the end") {
    auto s = t.streamer();
    CHECK(s.decode_next(0xE6) == "");
    CHECK(s.decode_next(0x97) == "");
    CHECK(s.flush() == "\xE6\x97");
    CHECK(s.flush() == "");
  }
  SECTION("the concatenation equals decode, and each part is whole characters") {
    for (const std::string text :
         {"Hello", "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA6\x99!", "\xC3\xA9\xC3",
          "\x80\x80\xE2\x82", ""}) {
      const auto ids = t.encode(text, true);
      const auto parts = stream(t, ids);
      CHECK(concat(parts) == t.decode(ids));
      if (is_utf8(text)) {
        for (const auto& p : parts) {
          CHECK(is_utf8(p));
        }
      }
    }
  }
  SECTION("a context is not repeated") {
    const auto prompt = t.encode("caf", true);
    CHECK(concat(stream(t, t.encode("\xC3\xA9!", false), prompt)) == "\xC3\xA9!");
  }
}

TEST_CASE("bytes: the classifier marks ASCII punctuation and BOS, EOS, PAD",
          "[llama][tokenizer][vocab]") {
  const auto c = byte_tok().classifier();
  CHECK(c.vocab_size() == 512);
  CHECK(c('.') == kvsieve::token_class::punctuation);
  CHECK(c(',') == kvsieve::token_class::punctuation);
  CHECK(c('a') == kvsieve::token_class::none);
  CHECK(c(' ') == kvsieve::token_class::none);
  CHECK(c(0xC3) == kvsieve::token_class::none);
  CHECK(c(256) == kvsieve::token_class::special);
  CHECK(c(257) == kvsieve::token_class::special);
  CHECK(c(258) == kvsieve::token_class::special);
  CHECK(c(300) == kvsieve::token_class::none);
  CHECK(c.count(kvsieve::token_class::special) == 3);
  CHECK(c.count(kvsieve::token_class::punctuation) == 32);
}

TEST_CASE("bytes: bad sizes, special ids and token ids are rejected", "[llama][tokenizer]") {
  using kvsieve::errc;
  CHECK(code_of([] { (void)llama::tokenizer::bytes(258, 256, {257}); }) ==
        errc::invalid_argument);
  CHECK(code_of([] { (void)llama::tokenizer::bytes(259, 65, {257}); }) ==
        errc::invalid_argument);
  CHECK(code_of([] { (void)llama::tokenizer::bytes(259, 256, {259}); }) ==
        errc::invalid_argument);
  const auto t = byte_tok();
  CHECK(code_of([&] { (void)t.decode(ids_t{'a', 512}); }) == errc::invalid_argument);
  CHECK(code_of([&] { (void)t.decode(ids_t{-1}); }) == errc::invalid_argument);
  auto s = t.streamer();
  CHECK(code_of([&] { (void)s.decode_next(512); }) == errc::invalid_argument);
}

TEST_CASE("load picks bytes without tokenizer.model and SentencePiece with it",
          "[llama][tokenizer]") {
  const temp_dir dir;
  const auto bytes = llama::tokenizer::load(dir.path, 259, 256, {257});
  CHECK(bytes.kind() == "bytes");
  CHECK(bytes.encode("a", true) == ids_t{256, 'a'});

  fs::copy_file(spm_dir / "tiny.model", dir.path / "tokenizer.model");
  const auto sp = llama::tokenizer::load(dir.path, 1024, 1, {2, 3});
  CHECK(sp.kind() == "sentencepiece");
  CHECK(sp.bos_id() == 1);
  CHECK(sp.is_eos(2));
  CHECK(sp.is_eos(3)); // the checkpoint's EOS list wins over the model's one
  CHECK(sp.encode("Hello", false) == tiny().encode("Hello", false));

  const auto err =
      error_of([&] { (void)llama::tokenizer::load(dir.path / "nope", 259, 256, {257}); });
  REQUIRE(err);
  CHECK(err->code() == kvsieve::errc::io);
  CHECK(std::string(err->what()).find("nope") != std::string::npos);
  CHECK(code_of([&] { (void)llama::tokenizer::load(dir.path, 1024, 1024, {2}); }) ==
        kvsieve::errc::invalid_argument);
}

TEST_CASE("sentencepiece: the vocabulary facts are the Python binding's", "[llama][tokenizer]") {
  const auto& j = expected();
  const auto& t = tiny();
  CHECK(t.kind() == "sentencepiece");
  CHECK(t.vocab_size() == j["piece_size"].get<std::int32_t>());
  CHECK(t.bos_id() == j["bos_id"].get<std::int32_t>());
  CHECK(t.is_eos(j["eos_id"].get<std::int32_t>()));
  CHECK_FALSE(t.is_eos(t.bos_id()));
}

TEST_CASE("sentencepiece: encode and decode equal the Python binding on every string",
          "[llama][tokenizer]") {
  const auto& t = tiny();
  for (const auto& c : expected()["cases"]) {
    const auto text = c["text"].get<std::string>();
    const auto ids = c["ids"].get<ids_t>();
    CAPTURE(text);
    CHECK(t.encode(text, false) == ids);
    ids_t with_bos{t.bos_id()};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    CHECK(t.encode(text, true) == with_bos);
    CHECK(t.decode(ids) == c["decoded"].get<std::string>());
    CHECK(t.decode(with_bos) == c["decoded"].get<std::string>());
  }
  for (const auto& c : expected()["decode_cases"]) {
    const auto ids = c["ids"].get<ids_t>();
    CAPTURE(ids);
    CHECK(t.decode(ids) == c["decoded"].get<std::string>());
  }
}

TEST_CASE("sentencepiece: the stream concatenates to decode", "[llama][tokenizer]") {
  const auto& t = tiny();
  SECTION("every fixture, with and without BOS and EOS; whole characters in each part") {
    for (const auto& c : expected()["cases"]) {
      const auto ids = c["ids"].get<ids_t>();
      ids_t framed{t.bos_id()};
      framed.insert(framed.end(), ids.begin(), ids.end());
      framed.push_back(2);
      for (const auto& seq : {ids, framed}) {
        CAPTURE(seq);
        const auto parts = stream(t, seq);
        CHECK(concat(parts) == t.decode(seq));
        CHECK(parts.back().empty()); // encode() never ends inside a character
        for (const auto& p : parts) {
          CHECK(is_utf8(p));
        }
      }
    }
    for (const auto& c : expected()["decode_cases"]) {
      const auto ids = c["ids"].get<ids_t>();
      CAPTURE(ids);
      CHECK(concat(stream(t, ids)) == c["decoded"].get<std::string>());
    }
  }
  SECTION("a byte-fallback character comes out with its last byte") {
    // "🦙" is <0xF0><0x9F><0xA6><0x99> (ids 4 + byte) in tiny.model.
    auto s = t.streamer(t.encode("I", true));
    CHECK(s.decode_next(4 + 0xF0) == "");
    CHECK(s.decode_next(4 + 0x9F) == "");
    CHECK(s.decode_next(4 + 0xA6) == "");
    CHECK(s.decode_next(4 + 0x99) == "\xF0\x9F\xA6\x99");
    CHECK(s.decode_next(4 + 0xE2) == "");
    CHECK(s.flush() == "\xEF\xBF\xBD"); // a cut character is U+FFFD, as decode() makes it
  }
  SECTION("random id sequences, byte runs and specials included") {
    std::mt19937 rng(20240601);
    std::uniform_int_distribution<int> kind(0, 9);
    std::uniform_int_distribution<std::int32_t> special(0, 3);
    std::uniform_int_distribution<std::int32_t> normal(260, 1023);
    std::uniform_int_distribution<std::int32_t> byte(0, 255);
    std::uniform_int_distribution<std::int32_t> length(0, 24);
    // Valid multi-byte characters (some cut short) make the byte runs realistic.
    const std::vector<std::string> chars = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\xA6\x99",
                                            "\xE6\x97\xA5", "\xCE\xB1"};
    for (int trial = 0; trial < 2000; ++trial) {
      ids_t ids;
      for (int n = length(rng); n > 0; --n) {
        const int k = kind(rng);
        if (k == 0) {
          ids.push_back(special(rng));
        } else if (k <= 3) {
          ids.push_back(4 + byte(rng));
        } else if (k <= 6) {
          const auto& ch = chars[static_cast<std::size_t>(byte(rng)) % chars.size()];
          const std::size_t keep = k == 4 ? ch.size() - 1 : ch.size();
          for (std::size_t i = 0; i < keep; ++i) {
            ids.push_back(4 + static_cast<unsigned char>(ch[i]));
          }
        } else {
          ids.push_back(k == 7 ? 865 : normal(rng)); // 865 is the lone "▁"
        }
      }
      CAPTURE(ids);
      const auto split = ids.empty() ? 0 : static_cast<std::size_t>(byte(rng)) % ids.size();
      const ids_t context(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(split));
      const ids_t rest(ids.begin() + static_cast<std::ptrdiff_t>(split), ids.end());
      REQUIRE(concat(stream(t, ids)) == t.decode(ids));
      // Priming with a context: its decode is then a prefix, unless it ends in a byte run.
      const auto whole = t.decode(ids);
      const auto head = t.decode(context);
      if (context.empty() || !(context.back() >= 4 && context.back() < 260)) {
        REQUIRE(whole.substr(0, head.size()) == head);
        REQUIRE(concat(stream(t, rest, context)) == whole.substr(head.size()));
      }
    }
  }
}

TEST_CASE("sentencepiece: a primed stream keeps the space of the first generated word",
          "[llama][tokenizer]") {
  const auto& t = tiny();
  const auto ids = t.encode("Hello, world. This is a test.", true);
  const auto whole = t.decode(ids);
  for (std::size_t k = 1; k <= ids.size(); ++k) {
    const ids_t prompt(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k));
    const ids_t rest(ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end());
    CHECK(t.decode(prompt) + concat(stream(t, rest, prompt)) == whole);
  }
  // Unprimed, the first piece loses its "▁" exactly as decode() of the same ids does.
  // ids: <s> "▁" "H" "el" "lo" "," "▁w" "or" "ld" ...
  const auto world = ids_t(ids.begin() + 6, ids.begin() + 9);
  CHECK(concat(stream(t, world)) == "world");
  CHECK(concat(stream(t, world, ids_t(ids.begin(), ids.begin() + 6))) == " world");
}

TEST_CASE("sentencepiece: padding ids past the model's pieces decode to nothing",
          "[llama][tokenizer]") {
  const auto t = llama::tokenizer::sentencepiece(spm_dir / "tiny.model", 1056);
  CHECK(t.vocab_size() == 1056);
  const auto hello = t.encode("Hello", false);
  ids_t padded = hello;
  padded.insert(padded.begin() + 2, 1030);
  CHECK(t.decode(padded) == "Hello");
  CHECK(concat(stream(t, padded)) == "Hello");
  CHECK(t.classifier().vocab_size() == 1056);
  CHECK(t.classifier()(1055) == kvsieve::token_class::none);
}

TEST_CASE("sentencepiece: the classifier marks control, unknown and user-defined pieces special "
          "and punctuation pieces punctuation", "[llama][tokenizer][vocab]") {
  const auto& j = expected();
  const auto c = tiny().classifier();
  CHECK(c.vocab_size() == 1024);
  ids_t specials = j["control_ids"].get<ids_t>();
  for (const char* key : {"unknown_ids", "user_defined_ids"}) {
    const auto more = j[key].get<ids_t>();
    specials.insert(specials.end(), more.begin(), more.end());
  }
  CHECK(specials.size() == 4); // <unk>, <s>, </s>, <sep>
  for (auto id : specials) {
    CHECK(c(id) == kvsieve::token_class::special);
  }
  CHECK(c.count(kvsieve::token_class::special) == 4);

  // Piece ids by spelling, from the fixture's encodings.
  std::map<std::string, std::int32_t> id_of;
  for (const auto& cs : j["cases"]) {
    const auto pieces = cs["pieces"].get<std::vector<std::string>>();
    const auto ids = cs["ids"].get<ids_t>();
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      id_of[pieces[i]] = ids[i];
    }
  }
  for (const char* punct : {".", ",", "(", "):", "\xE2\x96\x81*", "<0x2E>"}) {
    CAPTURE(punct);
    if (id_of.contains(punct)) {
      CHECK(c(id_of.at(punct)) == kvsieve::token_class::punctuation);
    }
  }
  REQUIRE(id_of.contains("."));
  REQUIRE(id_of.contains("\xE2\x96\x81*")); // "▁*"
  for (const char* word : {"el", "\xE2\x96\x81w", "\xE2\x96\x81", "<0x0A>", "<0xE2>"}) {
    CAPTURE(word);
    REQUIRE(id_of.contains(word));
    CHECK(c(id_of.at(word)) == kvsieve::token_class::none);
  }
}

TEST_CASE("sentencepiece: LLaMA-2 chat markers are special sequences",
          "[llama][tokenizer][vocab]") {
  const auto& t = tiny();
  const auto c = t.classifier();
  const auto ids = t.encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] ok", true);
  const auto classes = c.classify(ids);
  // The text of the special tokens, in order: each token's text from a stream over the prompt.
  auto s = t.streamer();
  std::string special_text;
  std::string other_text;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    (classes[i] == kvsieve::token_class::special ? special_text : other_text) +=
        s.decode_next(ids[i]);
  }
  CHECK(special_text == "[INST] <<SYS>><</SYS>> [/INST]");
  CHECK(other_text == "\nBe brief.\n\n\nHi! ok");
  // Outside a marker the same pieces are not special.
  const auto plain = t.encode("INST SYS [ ] < >", false);
  for (auto cls : c.classify(plain)) {
    CHECK(cls != kvsieve::token_class::special);
  }
}

TEST_CASE("sentencepiece: missing or broken models, small vocabularies and bad ids are errors",
          "[llama][tokenizer]") {
  using kvsieve::errc;
  const auto missing = error_of([] {
    (void)llama::tokenizer::sentencepiece(spm_dir / "missing.model", 1024);
  });
  REQUIRE(missing);
  CHECK(missing->code() == errc::io);
  CHECK(std::string(missing->what()).find("missing.model") != std::string::npos);

  const temp_dir dir;
  {
    std::ofstream out(dir.path / "tokenizer.model", std::ios::binary);
    out << "this is not a protobuf \xFF\xFF\xFF\xFF garbage";
  }
  for (const auto& path : {dir.path / "tokenizer.model", spm_dir / "expected.json"}) {
    const auto broken = error_of([&] { (void)llama::tokenizer::sentencepiece(path, 1024); });
    REQUIRE(broken);
    CHECK(broken->code() == errc::io);
    CHECK(std::string(broken->what()).find(path.filename().string()) != std::string::npos);
  }
  const auto via_load = error_of([&] { (void)llama::tokenizer::load(dir.path, 1024, 1, {2}); });
  REQUIRE(via_load);
  CHECK(via_load->code() == errc::io);

  CHECK(code_of([] { (void)llama::tokenizer::sentencepiece(spm_dir / "tiny.model", 1000); }) ==
        errc::invalid_argument);
  const auto& t = tiny();
  CHECK(code_of([&] { (void)t.decode(ids_t{1, 1024}); }) == errc::invalid_argument);
  CHECK(code_of([&] { (void)t.decode(ids_t{-3}); }) == errc::invalid_argument);
  auto s = t.streamer();
  CHECK(code_of([&] { (void)s.decode_next(1024); }) == errc::invalid_argument);
  CHECK(code_of([&] { (void)t.streamer(ids_t{5000}); }) == errc::invalid_argument);
}
