// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is config.json, read by llama::config::load. An accepted config
// must satisfy every range the loader documents.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include <llama/config.hpp>

#include "fuzz_common.hpp"

extern "C" auto LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) -> int {
  static const auto dir = [] {
    auto d = fuzz::scratch_dir() / "config";
    fuzz::fs::create_directories(d);
    return d;
  }();
  fuzz::write_file(dir / "config.json", fuzz::as_text(data, size));
  fuzz::expect_only_kvsieve_errors([&] {
    const auto c = llama::config::load(dir);
    fuzz::check(c.hidden_size > 0 && c.intermediate_size > 0 && c.n_layer > 0 && c.n_head > 0 &&
                    c.n_head_kv > 0 && c.vocab_size > 0 && c.max_position_embeddings > 0,
                "sizes are positive");
    fuzz::check(c.n_head % c.n_head_kv == 0, "n_head_kv divides n_head");
    fuzz::check(c.head_dim > 0 && c.head_dim % 2 == 0, "head_dim positive and even");
    fuzz::check(std::isfinite(c.rms_norm_eps) && c.rms_norm_eps > 0.0F, "rms_norm_eps > 0");
    fuzz::check(std::isfinite(c.rope_theta) && c.rope_theta > 0.0F, "rope_theta > 0");
    fuzz::check(c.bos_token_id >= 0 && c.bos_token_id < c.vocab_size, "bos in the vocabulary");
    fuzz::check(!c.eos_token_ids.empty(), "eos given");
    for (const auto id : c.eos_token_ids) {
      fuzz::check(id >= 0 && id < c.vocab_size, "eos in the vocabulary");
    }
  });
  return 0;
}
