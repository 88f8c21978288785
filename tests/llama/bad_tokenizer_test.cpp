// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
/// Hostile tokenizer.model files and the text helpers behind every loader's messages: the
/// protobuf reader against bogus lengths, huge varints and unknown wire types, damaged
/// normalisation tries (which crashed the sentencepiece library), models the library rejects,
/// and printable() / excerpt() bounds. Models are built here by a
/// small protobuf writer (the same wire format tools/fuzz_seeds.py writes), so each case shows
/// exactly the bytes at fault.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <sys/stat.h> // mkfifo

#include <common/catch.hpp>
#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>

#include <llama/json_input.hpp>
#include <llama/printable.hpp>
#include <llama/sentencepiece_model.hpp>
#include <llama/tokenizer.hpp>

#include "checkpoint_writer.hpp"

using namespace llama_test;

namespace {

// ---- protobuf wire format, as protoc writes it
auto varint(std::uint64_t n) -> std::string {
  std::string out;
  do {
    out += static_cast<char>((n & 0x7FU) | (n > 0x7FU ? 0x80U : 0U));
    n >>= 7U;
  } while (n != 0);
  return out;
}
auto field_varint(std::uint64_t field, std::uint64_t n) -> std::string {
  return varint(field << 3U) + varint(n);
}
auto field_bytes(std::uint64_t field, std::string_view data) -> std::string {
  return varint(field << 3U | 2U) + varint(data.size()) + std::string(data);
}
auto field_float(std::uint64_t field, float x) -> std::string {
  std::string bits(4, '\0');
  std::memcpy(bits.data(), &x, 4);
  return varint(field << 3U | 5U) + bits;
}

enum : std::uint64_t { normal = 1, unknown = 2, control = 3, user_defined = 4, byte = 6 };

struct piece {
  std::string text;
  std::uint64_t type = normal;
};

// A ModelProto: pieces, then a unigram TrainerSpec with <unk>, <s>, </s> at 0, 1, 2 and an
// identity NormalizerSpec.
auto model_proto(const std::vector<piece>& pieces, bool byte_fallback = false) -> std::string {
  std::string out;
  float score = 0.0F;
  for (const auto& p : pieces) {
    out += field_bytes(1, field_bytes(1, p.text) + field_float(2, score -= 0.5F) +
                              field_varint(3, p.type));
  }
  out += field_bytes(2, field_varint(3, 1) + field_varint(35, byte_fallback ? 1 : 0) +
                            field_varint(40, 0) + field_varint(41, 1) + field_varint(42, 2));
  out += field_bytes(3, field_bytes(1, "identity") + field_varint(4, 0));
  return out;
}

auto small_model() -> std::vector<piece> {
  return {{"<unk>", unknown}, {"<s>", control}, {"</s>", control}, {"\xE2\x96\x81"},
          {"a"},              {"b"},            {"\xE2\x96\x81" "ab"}};
}

auto proto_error(std::string_view proto) -> caught {
  auto e = error_from([&] { (void)llama::detail::read_model_facts(proto); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  return e;
}

auto load_error(std::string_view proto) -> caught {
  auto e = error_from([&] { (void)llama::tokenizer::sentencepiece_proto(proto, 1000, "m.model"); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, "m.model"));
  CHECK(e.what.size() < 600);
  return e;
}

} // namespace

TEST_CASE("a hand-written model loads and tokenizes like the library says",
          "[llama][tokenizer]") {
  const auto t = llama::tokenizer::sentencepiece_proto(model_proto(small_model()), 9);
  CHECK(t.piece_count() == 7);
  CHECK(t.vocab_size() == 9);
  CHECK(t.bos_id() == 1);
  CHECK(t.encode("ab", false) == std::vector<std::int32_t>{6}); // "▁ab", the dummy prefix
  CHECK(t.decode(std::vector<std::int32_t>{1, 6, 4, 8}) == "aba"); // BOS and padding vanish
}

TEST_CASE("the protobuf reader rejects truncated fields, bogus lengths and huge varints",
          "[llama][tokenizer][errors]") {
  const auto good = model_proto(small_model());
  CHECK(llama::detail::read_model_facts(good).types.size() == 7);

  // Cut anywhere inside the first piece: a truncated tag, length or payload.
  for (std::size_t cut = 1; cut < 12; ++cut) {
    CAPTURE(cut);
    CHECK(contains(proto_error(good.substr(0, cut)).what, "truncated field in the model protobuf"));
  }
  // A length of 2^64 - 1, which must not wrap around when added to the position.
  CHECK(contains(proto_error(varint(1U << 3U | 2U) + varint(~std::uint64_t{0}) + "xyz").what,
                 "truncated"));
  // A length just past the end.
  CHECK(contains(proto_error(varint(1U << 3U | 2U) + varint(4) + "xyz").what, "truncated"));
  // A varint of 11 bytes.
  CHECK(contains(proto_error(varint(2U << 3U) + std::string(10, '\xFF') + '\x01').what,
                 "bad varint"));
  // Wire types protobuf does not have (6, 7) and groups (3, 4), which these files never use.
  for (const std::uint64_t wire : {3U, 4U, 6U, 7U}) {
    CAPTURE(wire);
    CHECK(contains(proto_error(varint(1U << 3U | wire) + "abc").what,
                   fmt::format("wire type {}", wire)));
  }
  // The same inside a piece: the nested message is read with the same checks.
  CHECK(contains(proto_error(field_bytes(1, varint(3U << 3U) + "\x80")).what, "truncated"));
}

TEST_CASE("piece types the proto does not define count as normal, as in the library",
          "[llama][tokenizer]") {
  auto pieces = small_model();
  std::string proto = model_proto(pieces);
  // Piece 4 ("a") with type 7 and piece 5 ("b") with type 2^40: proto2 keeps the default.
  proto = model_proto({pieces[0], pieces[1], pieces[2], pieces[3], {"a", 7}, {"b", 1ULL << 40U},
                       pieces[6]});
  const auto facts = llama::detail::read_model_facts(proto);
  REQUIRE(facts.types.size() == 7);
  CHECK(facts.types[4] == llama::detail::piece_type::normal);
  CHECK(facts.types[5] == llama::detail::piece_type::normal);
  const auto t = llama::tokenizer::sentencepiece_proto(proto, 7);
  CHECK(t.decode(t.encode("ab ba", false)) == "ab ba");
}

TEST_CASE("models the library rejects are i/o errors naming the model",
          "[llama][tokenizer][errors]") {
  CHECK(contains(load_error("").what, "cannot load SentencePiece model m.model"));
  CHECK(contains(load_error("\xFF\xFF\xFF not a model").what, "cannot load"));
  // No pieces at all, and only the three specials.
  load_error(model_proto({}));
  auto specials = small_model();
  specials.resize(3);
  load_error(model_proto(specials));
  // Byte fallback without 256 byte pieces, and a byte piece not spelled <0xNN>.
  auto bytes = small_model();
  bytes.push_back({"<0x41>", byte});
  load_error(model_proto(bytes, true));
  bytes.back().text = "zz";
  for (int b = 0; b < 255; ++b) {
    bytes.push_back({fmt::format("<0x{:02X}>", b == 0x41 ? 0xFF : b), byte});
  }
  load_error(model_proto(bytes, true));
  // A piece text with control characters in the library's message is escaped.
  auto dup = small_model();
  dup.push_back({"\x1b[2J"});
  dup.push_back({"\x1b[2J"});
  const auto e = load_error(model_proto(dup));
  CHECK(contains(e.what, "\\x1b[2J"));
}

namespace {

const fs::path charsmap_model = fs::path(KVSIEVE_TEST_DATA_DIR) / "spm" / "charsmap.model";

auto read_bytes(const fs::path& p) -> std::string {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Where the precompiled_charsmap of spec `field` (3 normalizer, 5 denormalizer) starts in `proto`.
auto charsmap_offset(const std::string& proto, std::uint64_t field) -> std::size_t {
  std::size_t at = std::string::npos;
  llama::detail::for_each_proto_field(proto, [&](std::uint64_t f, unsigned, std::uint64_t,
                                                 std::string_view spec) {
    if (f == field) {
      llama::detail::for_each_proto_field(spec, [&](std::uint64_t g, unsigned, std::uint64_t,
                                                    std::string_view blob) {
        if (g == 2) {
          at = static_cast<std::size_t>(blob.data() - proto.data());
        }
      });
    }
  });
  REQUIRE(at != std::string::npos);
  return at;
}

// A charsmap blob: u32 trie size, the units, then the replacement strings.
auto charsmap(const std::vector<std::uint32_t>& units, std::string_view strings) -> std::string {
  std::string out(4 + 4 * units.size(), '\0');
  const auto bytes = static_cast<std::uint32_t>(4 * units.size());
  std::memcpy(out.data(), &bytes, 4);
  std::memcpy(out.data() + 4, units.data(), 4 * units.size());
  return out + std::string(strings);
}

} // namespace

TEST_CASE("an empty piece or one with a NUL byte is an i/o error, not std::terminate",
          "[llama][tokenizer][errors]") {
  // libsentencepiece builds its piece trie from C strings even for a model it rejects, and
  // darts-clone's exception for such a key ends the process: these must never reach it.
  auto with_nul = small_model();
  with_nul.push_back({std::string("a\0b", 3)});
  CHECK(contains(load_error(model_proto(with_nul)).what,
                 "piece 7 is \"a\\x00b\", with a NUL byte"));
  auto leading_nul = small_model();
  leading_nul[4].text = std::string("\0", 1);
  CHECK(contains(load_error(model_proto(leading_nul)).what, "piece 4 is \"\\x00\""));
  auto empty = small_model();
  empty[5].text.clear();
  CHECK(contains(load_error(model_proto(empty)).what, "piece 5 is empty"));
  // A piece message without its text field: the text is the default, "".
  const auto no_text = field_bytes(1, field_float(2, -1.0F)) + model_proto(small_model());
  CHECK(contains(load_error(no_text).what, "piece 0 is empty"));
  // The text field given twice: protobuf keeps the last.
  const auto twice = field_bytes(1, field_bytes(1, "ok") + field_bytes(1, std::string("\0", 1))) +
                     model_proto(small_model());
  CHECK(contains(load_error(twice).what, "piece 0 is \"\\x00\""));
}

TEST_CASE("a model with normalisation rules loads and applies them",
          "[llama][tokenizer]") {
  // tools/fuzz_seeds.py trains it with A->a, B->b, fullwidth A->A and denormalises the same.
  const auto t = llama::tokenizer::sentencepiece(charsmap_model, 29);
  const auto ids = t.encode("A Big Bad cat", false);
  CHECK(ids == std::vector<std::int32_t>{3, 7, 12, 11, 20, 12, 7, 19, 13, 15}); // Python's
  CHECK(t.decode(ids) == "a big bad cat");
}

TEST_CASE("a damaged normalisation trie is an i/o error before the library walks it",
          "[llama][tokenizer][errors]") {
  const auto good = read_bytes(charsmap_model);
  for (const std::uint64_t spec : {3U, 5U}) {
    const std::size_t at = charsmap_offset(good, spec);
    std::uint32_t trie_bytes = 0;
    std::memcpy(&trie_bytes, good.data() + at, 4);
    REQUIRE(trie_bytes == 1024);
    for (const int fill : {0xFF, 0x5A}) { // offsets far past the trie
      CAPTURE(spec, fill);
      auto bad = good;
      std::memset(bad.data() + at + 4, fill, trie_bytes);
      const auto e = load_error(bad);
      CHECK(contains(e.what, spec == 3 ? "the precompiled_charsmap of its normalizer_spec is "
                                         "damaged"
                                       : "the precompiled_charsmap of its denormalizer_spec is "
                                         "damaged"));
    }
  }
}

TEST_CASE("charsmap_problem checks every read the library's trie walk can make",
          "[llama][tokenizer]") {
  using llama::detail::charsmap_problem;
  CHECK(charsmap_problem("").empty());
  CHECK(charsmap_problem("abc").empty());          // the library's own error
  CHECK(charsmap_problem("\x10\0\0\0ab").empty()); // likewise: trie size past the end
  // 256 zero units: every label is 0, so only byte 0 leads on (to the root again).
  std::vector<std::uint32_t> units(256, 0);
  CHECK(charsmap_problem(charsmap(units, "x")).empty());
  CHECK(contains(charsmap_problem(charsmap(std::vector<std::uint32_t>(100, 0), "x")),
                 "transition points past its 100 units"));
  auto root_far = units;
  root_far[0] = 1000U << 10U; // the root's offset: state 1000
  CHECK(contains(charsmap_problem(charsmap(root_far, "x")), "state points past its 256 units"));
  auto big_value = units;
  big_value[65] = 65U | 1U << 8U; // 'A' is a leaf whose value unit is itself: value 321
  CHECK(contains(charsmap_problem(charsmap(big_value, "abcd")),
                 "value points past its 4 bytes of replacements"));
  CHECK(charsmap_problem(charsmap(big_value, std::string(321, 'r'))).empty());
  auto label_high = big_value;
  label_high[65] |= 1U << 31U; // bit 31 is part of the label: never matches a byte
  CHECK(charsmap_problem(charsmap(label_high, "abcd")).empty());
}

TEST_CASE("byte_piece_value reads exactly <0xNN> with upper-case hex digits",
          "[llama][tokenizer]") {
  CHECK(llama::detail::byte_piece_value("<0x00>") == 0);
  CHECK(llama::detail::byte_piece_value("<0xA7>") == 0xA7);
  CHECK(llama::detail::byte_piece_value("<0xFF>") == 0xFF);
  for (const auto* bad : {"<0xa7>", "<0xG0>", "<0x1>", "<0x100>", "0x41", "<0X41>", "", "<0x4"}) {
    CAPTURE(bad);
    CHECK(llama::detail::byte_piece_value(bad) == -1);
  }
}

TEST_CASE("tokenizer.model that is a directory or far too large is an i/o error naming it",
          "[llama][tokenizer][errors]") {
  const temp_dir dir;
  fs::create_directory(dir / "tokenizer.model");
  auto e = error_from([&] { (void)llama::tokenizer::load(dir.path(), 1000, 1, {2}); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, "tokenizer.model: not a regular file"));

  const temp_dir fifo;
  REQUIRE(::mkfifo((fifo / "tokenizer.model").c_str(), 0600) == 0);
  e = error_from([&] { (void)llama::tokenizer::load(fifo.path(), 1000, 1, {2}); });
  INFO(e.what);
  CHECK(contains(e.what, "tokenizer.model: not a regular file"));

  // A name the file system refuses (ENAMETOOLONG): std::filesystem's throwing calls would
  // escape as std::filesystem::filesystem_error.
  e = error_from([&] { (void)llama::tokenizer::load(dir / std::string(300, 'd'), 1000, 1, {2}); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, "not found"));

  const temp_dir big;
  write_file(big / "tokenizer.model", "x");
  std::error_code ec;
  fs::resize_file(big / "tokenizer.model", llama::tokenizer::max_model_bytes + 1, ec);
  if (ec) {
    WARN("skipped: no sparse file of 256 MB here");
    return;
  }
  e = error_from([&] { (void)llama::tokenizer::load(big.path(), 1000, 1, {2}); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, "more than the 268435456 this reader accepts"));
}

// ---------------------------------------------------------------- message helpers

TEST_CASE("printable keeps UTF-8 text and escapes controls and malformed bytes",
          "[llama][errors]") {
  using llama::detail::printable;
  CHECK(printable("plain text") == "plain text");
  const std::string utf8 = "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\xA6\x99";
  CHECK(printable(utf8) == utf8);
  CHECK(printable("a\nb\tc\x7F") == "a\\x0ab\\x09c\\x7f");
  CHECK(printable("\x1b[31m") == "\\x1b[31m");
  CHECK(printable("\xC2\x9B" "1m") == "\\xc2\\x9b1m");          // U+009B, a C1 control (CSI)
  CHECK(printable("\xC0\x80") == "\\xc0\\x80");                 // overlong NUL
  CHECK(printable("\xED\xA0\x80") == "\\xed\\xa0\\x80");        // a surrogate
  CHECK(printable("\xF4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80"); // past U+10FFFF
  CHECK(printable("\xE6\x97") == "\\xe6\\x97");                 // cut short
  CHECK(printable(std::string_view("nul\0x", 5)) == "nul\\x00x");
  // Bounded, cut between characters.
  CHECK(printable(std::string(1000, 'x'), 10) == "xxxxxxxxxx...");
  CHECK(printable("\xE6\x97\xA5\xE6\x97\xA5\xE6\x97\xA5", 4) == "\xE6\x97\xA5\xE6\x97\xA5...");
}

TEST_CASE("excerpt shows small values whole and bounds large or deep ones", "[llama][errors]") {
  using llama::detail::excerpt;
  CHECK(excerpt(nlohmann::json(8)) == "8");
  CHECK(excerpt(nlohmann::json("x\ny")) == "\"x\\ny\"");
  CHECK(excerpt(nlohmann::json{{"rope_type", "llama3"}, {"factor", 8.0}}) ==
        "{\"factor\": 8.0, \"rope_type\": \"llama3\"}");
  CHECK(excerpt(nlohmann::json::array({1, 2, 3})) == "[1, 2, 3]");

  const auto long_string = excerpt(nlohmann::json(std::string(140000, 'a')));
  CHECK(long_string.size() <= 84);
  CHECK(long_string.starts_with("\"aaaa"));
  CHECK(long_string.ends_with("..."));

  nlohmann::json many = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) {
    many.push_back(i);
  }
  const auto long_array = excerpt(many, 30);
  CHECK(long_array.size() <= 34);
  CHECK(long_array.starts_with("[0, 1, 2, 3"));

  const auto deep = llama::detail::parse_json(std::string(63, '[') + std::string(63, ']'), "t");
  CHECK(excerpt(deep) == "[[[[...]]]]");
  // A string cut inside a multi-byte character stays valid UTF-8.
  const auto cut = excerpt(nlohmann::json(std::string(200, 'a') + "\xE6\x97\xA5"), 201);
  CHECK(kvsieve::detail::decode_utf8(cut).has_value());
}
