// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::detail::sentencepiece_model: a SentencePiece `tokenizer.model` loaded by the
/// sentencepiece C++ library, plus what its C++ API (libsentencepiece 0.1.97) does not expose,
/// read from the serialized ModelProto by a small protobuf wire-format reader: each piece's type
/// and whether a denormalizer rewrites decoded text. The model file is untrusted input: every
/// length is checked against the bytes that remain, what the library would trust without checks
/// (piece texts, normalisation tries) is checked first (check_before_library), and every
/// failure is a kvsieve::error (errc::io) naming the source, never a crash.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>

#include <llama/printable.hpp>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow" // the library's header is not ours to fix
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <sentencepiece_processor.h>
#pragma GCC diagnostic pop

namespace llama::detail {

/// ModelProto.SentencePiece.Type (sentencepiece_model.proto).
enum class piece_type : std::uint8_t {
  normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6
};

/// What the library's API does not say, read from the ModelProto.
struct model_facts {
  std::vector<piece_type> types;
  bool has_denormalizer = false;
};

/// Calls f(field, wire_type, varint value, length-delimited bytes) for each field of `message`.
/// Throws errc::io "<source>: ..." on a malformed message (a truncated field, a varint of more
/// than 10 bytes, a wire type protobuf does not have or that this reader does not need: groups
/// 3 and 4, which SentencePiece models never contain).
template <class F>
void for_each_proto_field(std::string_view message, F&& f, std::string_view source = "model") {
  std::size_t pos = 0;
  const auto fail = [&](std::string_view what) {
    kvsieve::raise(kvsieve::errc::io, fmt::format("{}: {} in the model protobuf at byte {}",
                                                  source, what, pos));
  };
  const auto varint = [&] {
    std::uint64_t value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (pos >= message.size()) {
        fail("truncated field");
      }
      const auto b = static_cast<unsigned char>(message[pos++]);
      value |= std::uint64_t{b & 0x7FU} << shift;
      if (b < 0x80U) {
        return value;
      }
    }
    fail("bad varint");
    return value;
  };
  while (pos < message.size()) {
    const std::uint64_t tag = varint();
    const auto wire = static_cast<unsigned>(tag & 7U);
    std::uint64_t value = 0;
    std::uint64_t skip = 0;
    switch (wire) {
    case 0: value = varint(); break;
    case 1: skip = 8; break;
    case 2: skip = varint(); break;
    case 5: skip = 4; break;
    default: fail(fmt::format("wire type {}", wire));
    }
    // Compared as 64-bit: a length near 2^64 must not wrap into range.
    if (skip > message.size() - pos) {
      fail("truncated field");
    }
    const auto bytes = message.substr(pos, static_cast<std::size_t>(skip));
    pos += static_cast<std::size_t>(skip);
    f(tag >> 3U, wire, value, bytes);
  }
}

/// The facts of a serialized ModelProto. An enum value the proto does not define counts as the
/// default, normal, as proto2 parsers (the library's) treat it. Throws as for_each_proto_field.
[[nodiscard]] inline auto read_model_facts(std::string_view model_proto,
                                           std::string_view source = "model") -> model_facts {
  model_facts facts;
  for_each_proto_field(model_proto, [&](std::uint64_t field, unsigned wire, std::uint64_t,
                                        std::string_view bytes) {
    if (field == 1 && wire == 2) { // repeated SentencePiece pieces = 1
      auto type = piece_type::normal; // the proto's default
      for_each_proto_field(bytes, [&](std::uint64_t f, unsigned w, std::uint64_t v,
                                      std::string_view) {
        if (f == 3 && w == 0) { // optional Type type = 3
          type = v >= 1 && v <= 6 ? static_cast<piece_type>(v) : piece_type::normal;
        }
      }, source);
      facts.types.push_back(type);
    } else if (field == 5 && wire == 2) { // NormalizerSpec denormalizer_spec = 5
      for_each_proto_field(bytes, [&](std::uint64_t f, unsigned, std::uint64_t,
                                      std::string_view charsmap) {
        // The library builds a denormalizer only from a non-empty precompiled_charsmap (= 2).
        facts.has_denormalizer |= f == 2 && !charsmap.empty();
      }, source);
    }
  }, source);
  return facts;
}

/// Why the sentencepiece library could not safely use `blob` as a precompiled_charsmap, or ""
/// when it can. The blob is a u32 trie size, a darts-clone double-array trie (u32 units) and
/// the replacement strings; the library's Normalizer walks the trie on every input byte and
/// reads a replacement through a C string pointer, with no bounds checks at all, so a damaged
/// trie would make it read anywhere. This walks every state the library can reach, as its
/// commonPrefixSearch does (unit layout from darts.h: label = bits 0-7 and 31, has_leaf = bit 8,
/// offset = bits 10-31 shifted left by 8 when bit 9 is set, value = bits 0-30), and checks that
/// each unit it would read lies in the trie and each value in the replacement strings.
/// O(units * 256): ~10 ms for the largest tries (nmt_nfkc), nothing for LLaMA's (none).
[[nodiscard]] inline auto charsmap_problem(std::string_view blob) -> std::string {
  if (blob.empty()) {
    return {}; // no rules: the library builds no trie
  }
  std::uint32_t trie_bytes = 0;
  if (blob.size() <= sizeof trie_bytes) {
    return {}; // the library reports this one itself ("Blob ... is broken")
  }
  std::memcpy(&trie_bytes, blob.data(), sizeof trie_bytes);
  if (trie_bytes >= blob.size()) {
    return {}; // likewise ("Trie data size exceeds the input blob size")
  }
  const std::size_t n = trie_bytes / 4;
  const std::size_t strings = blob.size() - sizeof trie_bytes - trie_bytes;
  const auto unit = [&](std::size_t i) {
    std::uint32_t u = 0;
    std::memcpy(&u, blob.data() + sizeof trie_bytes + 4 * i, 4);
    return u;
  };
  const auto offset = [](std::uint32_t u) { return (u >> 10U) << ((u & (1U << 9U)) >> 6U); };
  if (n == 0) {
    return "the normalisation trie is empty";
  }
  std::vector<char> seen(n, 0);
  std::vector<std::uint32_t> todo{offset(unit(0))}; // the root's state
  while (!todo.empty()) {
    const std::uint32_t state = todo.back();
    todo.pop_back();
    if (state >= n) {
      return fmt::format("a trie state points past its {} units", n);
    }
    if (seen[state] != 0) {
      continue;
    }
    seen[state] = 1;
    for (std::uint32_t c = 0; c < 256; ++c) { // any input byte can come next
      const std::uint32_t child = state ^ c;
      if (child >= n) {
        return fmt::format("a trie transition points past its {} units", n);
      }
      const std::uint32_t u = unit(child);
      if ((u & ((1U << 31U) | 0xFFU)) != c) {
        continue; // the library stops here
      }
      const std::uint32_t next = child ^ offset(u);
      if (((u >> 8U) & 1U) != 0) { // has_leaf: the value unit is unit(next)
        if (next >= n) {
          return fmt::format("a trie value points past its {} units", n);
        }
        if ((unit(next) & ((1U << 31U) - 1U)) > strings) {
          return fmt::format("a trie value points past its {} bytes of replacements", strings);
        }
      }
      todo.push_back(next);
    }
  }
  return {};
}

/// Checks what the library would trust in `model_proto` as it stands, before it loads it:
///  - every piece text (the last occurrence of its field 1, as protobuf keeps) is non-empty and
///    has no NUL byte: the library builds its piece tries from C strings, and darts-clone throws
///    on an empty key or one cut short by a NUL in a way that ends the process (std::terminate
///    inside libsentencepiece), even for models whose load it would otherwise reject;
///  - every precompiled_charsmap of the normalizer_spec (3) and denormalizer_spec (5), each
///    occurrence (protobuf merges repeated ones), passes charsmap_problem.
/// Throws errc::io naming `source`.
inline void check_before_library(std::string_view model_proto, std::string_view source) {
  std::size_t n_pieces = 0;
  for_each_proto_field(model_proto, [&](std::uint64_t field, unsigned wire, std::uint64_t,
                                        std::string_view message) {
    if (field == 1 && wire == 2) { // repeated SentencePiece pieces = 1
      std::string_view text;
      for_each_proto_field(message, [&](std::uint64_t f, unsigned w, std::uint64_t,
                                        std::string_view bytes) {
        if (f == 1 && w == 2) { // optional string piece = 1
          text = bytes;
        }
      }, source);
      kvsieve::expects(!text.empty() && text.find('\0') == std::string_view::npos,
                       kvsieve::errc::io, [&] {
                         return fmt::format("{}: piece {} is {}", source, n_pieces,
                                            text.empty() ? std::string("empty")
                                                         : fmt::format("\"{}\", with a NUL byte",
                                                                       printable(text, 40)));
                       });
      ++n_pieces;
    } else if ((field == 3 || field == 5) && wire == 2) {
      for_each_proto_field(message, [&](std::uint64_t f, unsigned w, std::uint64_t,
                                        std::string_view blob) {
        if (f == 2 && w == 2) { // bytes precompiled_charsmap = 2
          const auto problem = charsmap_problem(blob);
          kvsieve::expects(problem.empty(), kvsieve::errc::io, [&] {
            return fmt::format("{}: the precompiled_charsmap of its {} is damaged: {}", source,
                               field == 3 ? "normalizer_spec" : "denormalizer_spec", problem);
          });
        }
      }, source);
    }
  }, source);
}

/// The byte a byte-fallback piece stands for: "<0xNN>" with two upper-case hex digits, as the
/// library writes them (ByteToPiece); -1 for any other text.
[[nodiscard]] inline auto byte_piece_value(std::string_view piece) noexcept -> int {
  const auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>' || hex(piece[3]) < 0 ||
      hex(piece[4]) < 0) {
    return -1;
  }
  return hex(piece[3]) * 16 + hex(piece[4]);
}

/// A loaded SentencePiece model, shared by a tokenizer, its copies and its stream decoders.
struct sentencepiece_model {
  ::sentencepiece::SentencePieceProcessor processor;
  model_facts facts;
  std::vector<char> byte_of; ///< the byte of each byte piece (see byte_piece_value), else 0
  std::int32_t n_pieces = 0;
  /// A normal piece that decodes to itself wherever it stands (no "▁", so neither the
  /// leading-space rule nor a byte run can touch it); -1 when there is none (or a
  /// denormalizer, which sees the whole text). See stream_decoder.
  std::int32_t sentinel = -1;
  std::string sentinel_text;

  [[nodiscard]] auto type(std::int32_t id) const -> piece_type {
    return facts.types[static_cast<std::size_t>(id)];
  }
  /// The library's decode of ids in [0, n_pieces).
  [[nodiscard]] auto decode(std::span<const std::int32_t> ids) const -> std::string {
    std::string text;
    const auto status = processor.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    kvsieve::expects(status.ok(), kvsieve::errc::invalid_argument,
                     [&] { return "sentencepiece decode: " + printable(status.ToString(), 200); });
    return text;
  }

  /// Loads a serialized ModelProto; `source` names it in messages. Throws errc::io when it is
  /// not a well-formed protobuf or fails check_before_library, when the
  /// library rejects it, when our reading of the piece types disagrees with the library's, or
  /// when a byte piece is not spelled "<0xNN>".
  [[nodiscard]] static auto load(std::string_view proto, std::string_view source)
      -> std::shared_ptr<const sentencepiece_model> {
    const auto where = fmt::format("cannot load SentencePiece model {}", source);
    // Before the library: its load builds tries from the pieces and already runs the model's
    // self-test samples through the normalisation tries.
    check_before_library(proto, where);
    auto sp = std::make_shared<sentencepiece_model>();
    const auto status = sp->processor.LoadFromSerializedProto(proto);
    kvsieve::expects(status.ok(), kvsieve::errc::io, [&] {
      // The library's message may quote a piece of the file.
      return fmt::format("{}: {}", where, printable(status.ToString(), 200));
    });
    sp->n_pieces = sp->processor.GetPieceSize();
    // The library's own serialization: one canonical copy of each field, as it parsed them.
    sp->facts = read_model_facts(sp->processor.serialized_model_proto(), where);
    kvsieve::expects(sp->facts_agree(), kvsieve::errc::io, [&] {
      return fmt::format("cannot read the piece types of SentencePiece model {}", source);
    });
    sp->byte_of.assign(static_cast<std::size_t>(sp->n_pieces), '\0');
    for (std::int32_t id = 0; id < sp->n_pieces; ++id) {
      if (sp->type(id) == piece_type::byte) {
        const auto& piece = sp->processor.IdToPiece(id);
        const int value = byte_piece_value(piece);
        kvsieve::expects(value >= 0, kvsieve::errc::io, [&] {
          return fmt::format("SentencePiece model {}: byte piece {} is \"{}\", not <0xNN>",
                             source, id, printable(piece, 40));
        });
        sp->byte_of[static_cast<std::size_t>(id)] = static_cast<char>(value);
      }
    }
    sp->find_sentinel();
    return sp;
  }

private:
  // Our protobuf reading must agree with the library on every type it does expose.
  [[nodiscard]] auto facts_agree() const -> bool {
    if (std::ssize(facts.types) != n_pieces) {
      return false;
    }
    for (std::int32_t id = 0; id < n_pieces; ++id) {
      const auto t = type(id);
      if ((t == piece_type::control) != processor.IsControl(id) ||
          (t == piece_type::unknown) != processor.IsUnknown(id) ||
          (t == piece_type::byte) != processor.IsByte(id) ||
          (t == piece_type::unused) != processor.IsUnused(id)) {
        return false;
      }
    }
    return true;
  }

  void find_sentinel() {
    if (facts.has_denormalizer) {
      return;
    }
    for (std::int32_t id = 0; id < n_pieces; ++id) {
      const std::string& piece = processor.IdToPiece(id);
      const std::int32_t one[] = {id};
      if (type(id) == piece_type::normal && !piece.empty() &&
          piece.find("\xE2\x96\x81") == std::string::npos && decode(one) == piece) {
        sentinel = id;
        sentinel_text = piece;
        return;
      }
    }
  }
};

} // namespace llama::detail
