// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::tokenizer: text <-> token ids for the reference decoder, with two backends chosen at
/// load time, and the vocabulary's token classes for kvsieve (fastgen-spec §3).
///  - bytes: ids 0..255 are the raw bytes; BOS, EOS and PAD (258) are ids >= 256 (the bundled
///    models/tiny-llama).
///  - sentencepiece: a LLaMA-1/2 `tokenizer.model`, run by the sentencepiece C++ library, so
///    encode() and decode() are exactly those of the Python binding (tools/spm_fixture.py).
/// stream_decoder turns ids into text one at a time for printing while generating; what it
/// returns, concatenated and followed by flush(), is exactly decode() of the same ids.
/// A tokenizer is cheap to copy (the SentencePiece model is shared, immutable) and every const
/// member is safe to call from several threads.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/vocab/token_classifier.hpp>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"     // the library's header is not ours to fix
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <sentencepiece_processor.h>
#pragma GCC diagnostic pop

namespace llama {

namespace detail {

/// How many bytes at the end of `bytes` start a UTF-8 sequence that more bytes could still
/// complete (a lead byte followed by fewer continuation bytes than it announces); 0 if none.
/// Holding those back never changes the text, only when it is shown.
[[nodiscard]] inline auto incomplete_utf8_tail(std::string_view bytes) noexcept -> std::size_t {
  for (std::size_t k = 1; k <= 3 && k <= bytes.size(); ++k) {
    const auto b = static_cast<unsigned char>(bytes[bytes.size() - k]);
    if ((b & 0xC0U) == 0x80U) {
      continue; // a continuation byte: the lead is further back
    }
    const std::size_t need = (b & 0xE0U) == 0xC0U   ? 2
                             : (b & 0xF0U) == 0xE0U ? 3
                             : (b & 0xF8U) == 0xF0U ? 4
                                                    : 1;
    return need > k ? k : 0;
  }
  return 0;
}

/// ModelProto.SentencePiece.Type (sentencepiece_model.proto).
enum class piece_type : std::uint8_t {
  normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6
};

/// What the C++ API of libsentencepiece 0.1.97 does not expose, read from the serialized
/// ModelProto (protobuf wire format): each piece's type (there is no IsUserDefined) and whether
/// a denormalizer rewrites decoded text.
struct model_facts {
  std::vector<piece_type> types;
  bool has_denormalizer = false;
};

/// Calls f(field, wire_type, varint value, length-delimited bytes) for each field of `message`.
/// Throws errc::io on a malformed message.
template <class F>
void for_each_proto_field(std::string_view message, F&& f) {
  std::size_t pos = 0;
  const auto varint = [&] {
    std::uint64_t value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      kvsieve::expects(pos < message.size(), kvsieve::errc::io, "truncated model protobuf");
      const auto b = static_cast<unsigned char>(message[pos++]);
      value |= std::uint64_t{b & 0x7FU} << shift;
      if (b < 0x80U) {
        return value;
      }
    }
    kvsieve::raise(kvsieve::errc::io, "bad varint in model protobuf");
  };
  while (pos < message.size()) {
    const std::uint64_t tag = varint();
    const auto wire = static_cast<unsigned>(tag & 7U);
    std::uint64_t value = 0;
    std::string_view bytes;
    std::size_t skip = 0;
    switch (wire) {
    case 0: value = varint(); break;
    case 1: skip = 8; break;
    case 2: skip = static_cast<std::size_t>(varint()); break;
    case 5: skip = 4; break;
    default: kvsieve::raise(kvsieve::errc::io, fmt::format("wire type {} in model protobuf", wire));
    }
    kvsieve::expects(skip <= message.size() - pos, kvsieve::errc::io, "truncated model protobuf");
    bytes = message.substr(pos, skip);
    pos += skip;
    f(tag >> 3U, wire, value, bytes);
  }
}

[[nodiscard]] inline auto read_model_facts(std::string_view model_proto) -> model_facts {
  model_facts facts;
  for_each_proto_field(model_proto, [&](std::uint64_t field, unsigned wire, std::uint64_t,
                                        std::string_view bytes) {
    if (field == 1 && wire == 2) { // repeated SentencePiece pieces = 1
      auto type = piece_type::normal; // the proto's default
      for_each_proto_field(bytes, [&](std::uint64_t f, unsigned w, std::uint64_t v,
                                      std::string_view) {
        if (f == 3 && w == 0) { // optional Type type = 3
          type = static_cast<piece_type>(v);
        }
      });
      facts.types.push_back(type);
    } else if (field == 5 && wire == 2) { // NormalizerSpec denormalizer_spec = 5
      for_each_proto_field(bytes, [&](std::uint64_t f, unsigned, std::uint64_t,
                                      std::string_view charsmap) {
        // The library builds a denormalizer only from a non-empty precompiled_charsmap (= 2).
        facts.has_denormalizer |= f == 2 && !charsmap.empty();
      });
    }
  });
  return facts;
}

/// A loaded SentencePiece model, shared by a tokenizer, its copies and its stream decoders.
struct sentencepiece_model {
  ::sentencepiece::SentencePieceProcessor processor;
  model_facts facts;
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
                     [&] { return "sentencepiece decode: " + status.ToString(); });
    return text;
  }
};

} // namespace detail

/// Streams text out of ids, one id at a time, for a tokenizer (see tokenizer::streamer).
/// Invariant: the concatenation of every decode_next() result and then flush() equals
/// tokenizer::decode() of the same ids (after the priming context, if any).
class stream_decoder {
public:
  /// The text that became complete with `id`: "" while a UTF-8 character is still cut (bytes
  /// backend or SentencePiece byte-fallback pieces <0xNN>), and for BOS/EOS/control ids.
  /// Throws errc::invalid_argument for an id outside the vocabulary. O(1) amortised for
  /// SentencePiece models with a sentinel piece (all LLaMA ones), else O(ids so far).
  auto decode_next(std::int32_t id) -> std::string {
    kvsieve::expects(id >= 0 && id < vocab_size_, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("token id {} outside the vocabulary [0, {})", id, vocab_size_);
    });
    if (!sp_) {
      if (id < 256) {
        held_.push_back(static_cast<char>(id));
      }
      const std::size_t ready = held_.size() - detail::incomplete_utf8_tail(held_);
      std::string out = held_.substr(0, ready);
      held_.erase(0, ready);
      return out;
    }
    if (id >= sp_->n_pieces) {
      return {}; // a checkpoint's padding id past the model's pieces: decode() drops it too
    }
    window_.push_back(id);
    if (sp_->type(id) != detail::piece_type::byte) {
      held_.clear(); // a non-byte piece ends the byte run: the library decodes it now
    } else {
      held_.push_back(byte_of(id));
      if (detail::incomplete_utf8_tail(held_) > 0) {
        return {};
      }
    }
    return emit();
  }

  /// What is still held back (a cut UTF-8 character at the end); afterwards the stream is at a
  /// character boundary. Call it once the last id has been passed.
  auto flush() -> std::string {
    if (!sp_) {
      return std::exchange(held_, {});
    }
    return emit();
  }

private:
  friend class tokenizer;
  stream_decoder(std::shared_ptr<const detail::sentencepiece_model> sp, std::int32_t vocab_size)
      : sp_(std::move(sp)), vocab_size_(vocab_size) {}

  [[nodiscard]] auto byte_of(std::int32_t id) const -> char {
    const std::string& piece = sp_->processor.IdToPiece(id); // "<0xNN>", as IsByte guarantees
    unsigned value = 0;
    std::from_chars(piece.data() + 3, piece.data() + 5, value, 16);
    return static_cast<char>(value);
  }

  // SentencePiece: the library decodes window_, the ids whose text is not final yet, and we
  // return what is new. Before any text, window_ is every id so far, so the library applies its
  // own leading-space rule (the first piece after BOS loses its "▁"). Once text has come out,
  // window_ restarts as [sentinel]: the sentinel's text is non-empty, so the library strips no
  // space from what follows, and a piece boundary ends a byte run exactly as the whole stream's
  // decode sees it (a character completed before the restart never joins a later byte).
  auto emit() -> std::string {
    const std::string text = sp_->decode(window_);
    std::string out = text.substr(std::min(emitted_, text.size()));
    started_ = started_ || !out.empty();
    if (started_ && sp_->sentinel >= 0) {
      window_.assign(1, sp_->sentinel);
      emitted_ = sp_->sentinel_text.size();
      held_.clear();
    } else {
      emitted_ = text.size();
    }
    return out;
  }

  std::shared_ptr<const detail::sentencepiece_model> sp_; // null: bytes backend
  std::int32_t vocab_size_;
  std::string held_;                 // bytes: held back; SentencePiece: bytes of the open run
  std::vector<std::int32_t> window_; // SentencePiece only
  std::size_t emitted_ = 0;          // bytes of decode(window_) already returned
  bool started_ = false;             // some text has been returned
};

class tokenizer {
public:
  static constexpr std::int32_t byte_pad_id = 258; ///< PAD of the bytes backend

  /// The model directory's tokenizer: SentencePiece when `model_dir/tokenizer.model` exists
  /// (with the checkpoint's BOS/EOS ids, which may differ from the model's), else bytes.
  /// Throws errc::io if model_dir is not a directory or tokenizer.model cannot be loaded, and
  /// errc::invalid_argument for ids or a vocab_size the backend cannot have (see below).
  [[nodiscard]] static auto load(const std::filesystem::path& model_dir, std::int32_t vocab_size,
                                 std::int32_t bos_id, std::vector<std::int32_t> eos_ids)
      -> tokenizer {
    kvsieve::expects(std::filesystem::is_directory(model_dir), kvsieve::errc::io, [&] {
      return fmt::format("model directory {} not found", model_dir.string());
    });
    const auto model_file = model_dir / "tokenizer.model";
    if (!std::filesystem::exists(model_file)) {
      return bytes(vocab_size, bos_id, std::move(eos_ids));
    }
    tokenizer t = sentencepiece(model_file, vocab_size);
    t.set_specials(bos_id, std::move(eos_ids), 0);
    return t;
  }

  /// Raw bytes: ids 0..255 are bytes; bos_id and eos_ids must lie in [256, vocab_size).
  /// Throws errc::invalid_argument for vocab_size < 259 or such an id.
  [[nodiscard]] static auto bytes(std::int32_t vocab_size, std::int32_t bos_id,
                                  std::vector<std::int32_t> eos_ids) -> tokenizer {
    kvsieve::expects(vocab_size >= 259, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("a byte-level vocabulary needs >= 259 ids (256 bytes, BOS, EOS, PAD), "
                         "not {}", vocab_size);
    });
    tokenizer t;
    t.vocab_size_ = vocab_size;
    t.set_specials(bos_id, std::move(eos_ids), 256);
    return t;
  }

  /// A SentencePiece model file; BOS/EOS are the model's own. vocab_size is the checkpoint's
  /// embedding rows: >= the model's piece count (ids past it are padding, decoded as nothing).
  /// Throws errc::io naming the file if it is missing or not a model, errc::invalid_argument if
  /// vocab_size is smaller than the piece count.
  [[nodiscard]] static auto sentencepiece(const std::filesystem::path& model_file,
                                          std::int32_t vocab_size) -> tokenizer {
    kvsieve::expects(std::filesystem::is_regular_file(model_file), kvsieve::errc::io, [&] {
      return fmt::format("SentencePiece model {} not found", model_file.string());
    });
    auto sp = std::make_shared<detail::sentencepiece_model>();
    const auto status = sp->processor.Load(model_file.string());
    kvsieve::expects(status.ok(), kvsieve::errc::io, [&] {
      return fmt::format("cannot load SentencePiece model {}: {}", model_file.string(),
                         status.ToString());
    });
    sp->n_pieces = sp->processor.GetPieceSize();
    sp->facts = detail::read_model_facts(sp->processor.serialized_model_proto());
    kvsieve::expects(facts_agree(*sp), kvsieve::errc::io, [&] {
      return fmt::format("cannot read the piece types of SentencePiece model {}",
                         model_file.string());
    });
    kvsieve::expects(vocab_size >= sp->n_pieces, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("vocab_size {} is smaller than the {} pieces of {}", vocab_size,
                         sp->n_pieces, model_file.string());
    });
    find_sentinel(*sp);
    tokenizer t;
    t.vocab_size_ = vocab_size;
    const int eos = sp->processor.eos_id();
    t.bos_id_ = sp->processor.bos_id();
    t.eos_ids_ = eos >= 0 ? std::vector<std::int32_t>{eos} : std::vector<std::int32_t>{};
    t.sp_ = std::move(sp);
    return t;
  }

  /// Token ids of `text`, BOS first if add_bos. SentencePiece: the library's encode (a leading
  /// "▁" is added, as in LLaMA). Throws errc::invalid_argument for add_bos without a BOS id.
  [[nodiscard]] auto encode(std::string_view text, bool add_bos) const
      -> std::vector<std::int32_t> {
    std::vector<std::int32_t> ids;
    if (add_bos) {
      kvsieve::expects(bos_id_ >= 0, kvsieve::errc::invalid_argument, "the tokenizer has no BOS");
      ids.push_back(bos_id_);
    }
    if (!sp_) {
      for (char c : text) {
        ids.push_back(static_cast<unsigned char>(c));
      }
      return ids;
    }
    std::vector<int> pieces;
    const auto status = sp_->processor.Encode(text, &pieces);
    kvsieve::expects(status.ok(), kvsieve::errc::invalid_argument,
                     [&] { return "sentencepiece encode: " + status.ToString(); });
    ids.insert(ids.end(), pieces.begin(), pieces.end());
    return ids;
  }

  /// The text of `ids`. bytes: the bytes concatenated, ids >= 256 dropped. SentencePiece: the
  /// library's (and Python binding's) decode: control ids vanish, the first piece loses its
  /// leading "▁", byte pieces join into UTF-8 (U+FFFD per byte that does not), <unk> is " ⁇ ";
  /// padding ids past the model's pieces are dropped. Throws errc::invalid_argument for an id
  /// outside [0, vocab_size()).
  [[nodiscard]] auto decode(std::span<const std::int32_t> ids) const -> std::string {
    std::vector<std::int32_t> kept;
    std::string text;
    for (auto id : ids) {
      check_id(id);
      if (!sp_ && id < 256) {
        text.push_back(static_cast<char>(id));
      } else if (sp_ && id < sp_->n_pieces) {
        kept.push_back(id);
      }
    }
    return sp_ ? sp_->decode(kept) : text;
  }

  /// A stream decoder for ids that follow `context` (e.g. the prompt's ids, BOS included): its
  /// output is decode(context + ids) minus decode(context), so a generated "▁word" keeps its
  /// space after a prompt; with no context the first piece loses it, as in decode(ids).
  /// (For a context that ends inside a byte-fallback character, which encode() never gives,
  /// the stream restarts at a character boundary.) Throws as decode() does for bad ids.
  [[nodiscard]] auto streamer(std::span<const std::int32_t> context = {}) const
      -> stream_decoder {
    stream_decoder s(sp_, vocab_size_);
    for (auto id : context) {
      static_cast<void>(s.decode_next(id));
    }
    static_cast<void>(s.flush());
    return s;
  }

  [[nodiscard]] auto is_eos(std::int32_t id) const noexcept -> bool {
    return std::find(eos_ids_.begin(), eos_ids_.end(), id) != eos_ids_.end();
  }
  [[nodiscard]] auto bos_id() const noexcept -> std::int32_t { return bos_id_; }
  [[nodiscard]] auto eos_ids() const noexcept -> std::span<const std::int32_t> { return eos_ids_; }
  [[nodiscard]] auto vocab_size() const noexcept -> std::int32_t { return vocab_size_; }
  [[nodiscard]] auto kind() const noexcept -> std::string_view {
    return sp_ ? "sentencepiece" : "bytes";
  }

  /// Token classes of the whole vocabulary (fastgen-spec §3). bytes: the 32 ASCII punctuation
  /// bytes; BOS, EOS and PAD special. SentencePiece: punctuation from each piece; control,
  /// unknown and user-defined pieces special; and LLaMA-2's chat markers "[INST]", "[/INST]",
  /// "<<SYS>>", "<</SYS>>", which its tokenizer spells with several pieces, as special
  /// sequences, each in the two spellings its chat template produces: after a space or at the
  /// start (encode(marker), with the dummy "▁") and after a newline ("\n<</SYS>>").
  [[nodiscard]] auto classifier(kvsieve::classifier_options opt = {}) const
      -> kvsieve::token_classifier {
    std::vector<std::int32_t> specials;
    if (!sp_) {
      specials.push_back(bos_id_);
      specials.insert(specials.end(), eos_ids_.begin(), eos_ids_.end());
      if (byte_pad_id < vocab_size_) {
        specials.push_back(byte_pad_id);
      }
      return kvsieve::token_classifier::for_bytes(vocab_size_, 0, specials, opt);
    }
    std::vector<std::string> pieces(static_cast<std::size_t>(vocab_size_)); // padding ids: ""
    for (std::int32_t id = 0; id < sp_->n_pieces; ++id) {
      pieces[static_cast<std::size_t>(id)] = sp_->processor.IdToPiece(id);
      const auto type = sp_->type(id);
      if (type == detail::piece_type::control || type == detail::piece_type::unknown ||
          type == detail::piece_type::user_defined) {
        specials.push_back(id);
      }
    }
    auto c = kvsieve::token_classifier::from_pieces(pieces, kvsieve::vocab_kind::sentencepiece,
                                                    specials, opt);
    // The newline spelling is encode("\n" + marker) minus encode("\n"), when that is a prefix.
    const auto newline = encode("\n", false);
    for (std::string_view marker : {"[INST]", "[/INST]", "<<SYS>>", "<</SYS>>"}) {
      std::vector<std::vector<std::int32_t>> spellings{encode(marker, false)};
      std::string text = "\n"; // not "\n" + std::string(marker): GCC 12 -Wrestrict false positive
      text += marker;
      const auto after_newline = encode(text, false);
      if (after_newline.size() > newline.size() &&
          std::equal(newline.begin(), newline.end(), after_newline.begin())) {
        spellings.emplace_back(after_newline.begin() + std::ssize(newline), after_newline.end());
      }
      for (auto& spelling : spellings) {
        if (spelling.size() > 1) {
          c.add_special_sequence(std::move(spelling));
        }
      }
    }
    return c;
  }

private:
  tokenizer() = default;

  void check_id(std::int32_t id) const {
    kvsieve::expects(id >= 0 && id < vocab_size_, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("token id {} outside the vocabulary [0, {})", id, vocab_size_);
    });
  }

  // Specials must be real ids and, for bytes, not bytes.
  void set_specials(std::int32_t bos_id, std::vector<std::int32_t> eos_ids, std::int32_t first) {
    for (auto id : eos_ids) {
      kvsieve::expects(id >= first && id < vocab_size_, kvsieve::errc::invalid_argument, [&] {
        return fmt::format("EOS id {} outside [{}, {})", id, first, vocab_size_);
      });
    }
    kvsieve::expects(bos_id >= first && bos_id < vocab_size_, kvsieve::errc::invalid_argument,
                     [&] { return fmt::format("BOS id {} outside [{}, {})", bos_id, first,
                                              vocab_size_); });
    bos_id_ = bos_id;
    eos_ids_ = std::move(eos_ids);
  }

  // Our protobuf reading must agree with the library on every type it does expose.
  [[nodiscard]] static auto facts_agree(const detail::sentencepiece_model& sp) -> bool {
    if (std::ssize(sp.facts.types) != sp.n_pieces) {
      return false;
    }
    for (std::int32_t id = 0; id < sp.n_pieces; ++id) {
      const auto t = sp.type(id);
      if ((t == detail::piece_type::control) != sp.processor.IsControl(id) ||
          (t == detail::piece_type::unknown) != sp.processor.IsUnknown(id) ||
          (t == detail::piece_type::byte) != sp.processor.IsByte(id) ||
          (t == detail::piece_type::unused) != sp.processor.IsUnused(id)) {
        return false;
      }
    }
    return true;
  }

  static void find_sentinel(detail::sentencepiece_model& sp) {
    if (sp.facts.has_denormalizer) {
      return;
    }
    for (std::int32_t id = 0; id < sp.n_pieces; ++id) {
      const std::string& piece = sp.processor.IdToPiece(id);
      const std::int32_t one[] = {id};
      if (sp.type(id) == detail::piece_type::normal && !piece.empty() &&
          piece.find("\xE2\x96\x81") == std::string::npos && sp.decode(one) == piece) {
        sp.sentinel = id;
        sp.sentinel_text = piece;
        return;
      }
    }
  }

  std::shared_ptr<const detail::sentencepiece_model> sp_; // null: bytes backend
  std::int32_t vocab_size_ = 0;
  std::int32_t bos_id_ = -1;
  std::vector<std::int32_t> eos_ids_;
};

} // namespace llama
