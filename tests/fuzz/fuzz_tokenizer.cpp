// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is a SentencePiece tokenizer.model (a serialized ModelProto). It
// is loaded as llama::tokenizer does (the sentencepiece library plus our protobuf reader), then
// used as the decoder uses it: encode fixed texts and the input's own first bytes, decode every
// id and id sequences taken from the input, stream-decode them (the stream must concatenate to
// decode()), and build the token classifier.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <llama/tokenizer.hpp>

#include "fuzz_common.hpp"

namespace {

void exercise(const llama::tokenizer& t, std::string_view input) {
  const std::int32_t vocab = t.vocab_size();
  for (const std::string_view text :
       {std::string_view(""), std::string_view(" "), std::string_view("Hello, world.\n"),
        std::string_view("caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\xA6\x99 [INST] <<SYS>>"),
        std::string_view("\xFF\xFE\x80 bad \xC3"), input.substr(0, 48)}) {
    fuzz::expect_only_kvsieve_errors([&] {
      const auto ids = t.encode(text, t.bos_id() >= 0);
      for (const auto id : ids) {
        fuzz::check(id >= 0 && id < vocab, "encode gives ids in the vocabulary");
      }
      (void)t.decode(ids);
    });
  }
  // Ids from the input's bytes, two per id, and then every id in turn.
  std::vector<std::int32_t> ids;
  for (std::size_t i = 0; i + 1 < input.size() && ids.size() < 64; i += 2) {
    const auto v = static_cast<std::int32_t>(static_cast<unsigned char>(input[i]) |
                                              static_cast<unsigned char>(input[i + 1]) << 8U);
    ids.push_back(v % vocab);
  }
  for (std::int32_t id = 0; id < std::min(vocab, 2048); ++id) {
    ids.push_back(id);
  }
  fuzz::expect_only_kvsieve_errors([&] {
    const auto text = t.decode(ids);
    auto s = t.streamer();
    std::string streamed;
    for (const auto id : ids) {
      streamed += s.decode_next(id);
    }
    streamed += s.flush();
    fuzz::check(streamed == text, "the stream concatenates to decode()");
  });
  fuzz::expect_only_kvsieve_errors([&] { (void)t.classifier(); });
}

} // namespace

extern "C" auto LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) -> int {
  const auto proto = fuzz::as_text(data, size);
  // The piece count as our reader sees it sizes the vocabulary (a few padding ids past it); a
  // model it cannot read, or that the library reads differently, is rejected by the load.
  std::size_t pieces = 0;
  fuzz::expect_only_kvsieve_errors(
      [&] { pieces = llama::detail::read_model_facts(proto).types.size(); });
  if (pieces > 100000) {
    return 0; // far past any fuzzed input's worth of work
  }
  fuzz::expect_only_kvsieve_errors([&] {
    const auto t = llama::tokenizer::sentencepiece_proto(
        proto, static_cast<std::int32_t>(std::max<std::size_t>(pieces, 1) + 3), "fuzz input");
    fuzz::check(t.piece_count() == static_cast<std::int32_t>(pieces), "piece count agrees");
    exercise(t, proto);
  });
  return 0;
}
