// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::tokenizer: text <-> token ids for the reference decoder, with two backends chosen at
/// load time, and the vocabulary's token classes for kvsieve (fastgen-spec §3).
///  - bytes: ids 0..255 are the raw bytes; BOS, EOS and PAD (258) are ids >= 256 (the bundled
///    models/tiny-llama).
///  - sentencepiece: a LLaMA-1/2 `tokenizer.model`, run by the sentencepiece C++ library, so
///    encode() and decode() are exactly those of the Python binding (tools/spm_fixture.py); the
///    file is checked as untrusted input (sentencepiece_model.hpp).
/// stream_decoder turns ids into text one at a time for printing while generating; what it
/// returns, concatenated and followed by flush(), is exactly decode() of the same ids.
/// A tokenizer is cheap to copy (the SentencePiece model is shared, immutable) and every const
/// member is safe to call from several threads.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/vocab/token_classifier.hpp>

#include <llama/sentencepiece_model.hpp>

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
      held_.push_back(sp_->byte_of[static_cast<std::size_t>(id)]);
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
    std::error_code ec; // the throwing overloads would escape as std::filesystem_error
    kvsieve::expects(std::filesystem::is_directory(model_dir, ec), kvsieve::errc::io, [&] {
      return fmt::format("model directory {} not found", model_dir.string());
    });
    const auto model_file = model_dir / "tokenizer.model";
    const bool has_model = std::filesystem::exists(model_file, ec);
    kvsieve::expects(!ec, kvsieve::errc::io, [&] {
      return fmt::format("{}: {}", model_file.string(), ec.message());
    });
    if (!has_model) {
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
  /// Throws errc::io naming the file if it is missing, larger than max_model_bytes or not a
  /// model, errc::invalid_argument if vocab_size is smaller than the piece count.
  [[nodiscard]] static auto sentencepiece(const std::filesystem::path& model_file,
                                          std::int32_t vocab_size) -> tokenizer {
    const auto where = model_file.string();
    std::error_code ec;
    kvsieve::expects(std::filesystem::is_regular_file(model_file, ec), kvsieve::errc::io, [&] {
      return std::filesystem::exists(model_file, ec)
                 ? fmt::format("SentencePiece model {}: not a regular file", where)
                 : fmt::format("SentencePiece model {} not found", where);
    });
    const auto size = std::filesystem::file_size(model_file, ec);
    kvsieve::expects(!ec && size <= max_model_bytes, kvsieve::errc::io, [&] {
      return fmt::format("SentencePiece model {}: {} bytes, more than the {} this reader accepts",
                         where, size, max_model_bytes);
    });
    std::ifstream in(model_file, std::ios::binary);
    std::string proto(static_cast<std::size_t>(size), '\0');
    in.read(proto.data(), static_cast<std::streamsize>(proto.size()));
    kvsieve::expects(in.gcount() == static_cast<std::streamsize>(proto.size()), kvsieve::errc::io,
                     [&] { return fmt::format("SentencePiece model {}: read failed", where); });
    return sentencepiece_proto(proto, vocab_size, where);
  }

  /// LLaMA's tokenizer.model is 0.5 MB, the largest SentencePiece vocabularies a few MB.
  static constexpr std::uintmax_t max_model_bytes = std::uintmax_t{256} << 20U;

  /// sentencepiece() from the bytes of a serialized ModelProto; `source` names it in messages.
  [[nodiscard]] static auto sentencepiece_proto(std::string_view proto, std::int32_t vocab_size,
                                                std::string_view source = "(in memory)")
      -> tokenizer {
    auto sp = detail::sentencepiece_model::load(proto, source);
    kvsieve::expects(vocab_size >= sp->n_pieces, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("vocab_size {} is smaller than the {} pieces of {}", vocab_size,
                         sp->n_pieces, source);
    });
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
  /// The ids that have text: the SentencePiece model's pieces (ids up to vocab_size() past them
  /// are padding), or the 256 bytes.
  [[nodiscard]] auto piece_count() const noexcept -> std::int32_t {
    return sp_ ? sp_->n_pieces : 256;
  }
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

  std::shared_ptr<const detail::sentencepiece_model> sp_; // null: bytes backend
  std::int32_t vocab_size_ = 0;
  std::int32_t bos_id_ = -1;
  std::vector<std::int32_t> eos_ids_;
};

} // namespace llama
