// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// What the libFuzzer targets share: a scratch directory per process for the files the loaders
/// read (they take paths, so the input is written to a file each time), a tiny LLaMA config the
/// weights are checked against, and the rule that kvsieve::error is the expected way to reject
/// an input while any other exception escapes to libFuzzer as a crash.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include <unistd.h> // getpid

#include <kvsieve/core/error.hpp>

#include <llama/config.hpp>

namespace fuzz {

namespace fs = std::filesystem;

/// A directory of this process's own, removed at exit; in /dev/shm when there is one, so that
/// writing the input each time costs a memory copy.
inline auto scratch_dir() -> const fs::path& {
  // Never destroyed: the exit handler below runs after static destructors would have run.
  static const fs::path* const dir = [] {
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                           : fs::temp_directory_path();
    auto* d = new fs::path(base / ("kvsieve-fuzz-" + std::to_string(::getpid())));
    fs::create_directories(*d);
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(scratch_dir(), ignored);
    });
    return d;
  }();
  return *dir;
}

inline void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort(); // the harness, not the input, is broken
  }
}

inline auto as_text(const std::uint8_t* data, std::size_t size) -> std::string_view {
  return {reinterpret_cast<const char*>(data), size};
}

/// A documented postcondition that an accepted input broke: a bug, reported as a crash.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: postcondition violated: %s\n", what);
    std::abort();
  }
}

/// The tiny model of tests/llama/checkpoint_writer.hpp: hidden 8, intermediate 12, 2 layers,
/// 2 query heads and 1 KV head of 4 dims, vocab 10; untied (lm_head.weight is read too).
inline auto tiny_config() -> llama::config {
  llama::config c;
  c.hidden_size = 8;
  c.intermediate_size = 12;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_head_kv = 1;
  c.head_dim = 4;
  c.vocab_size = 10;
  c.max_position_embeddings = 32;
  c.rms_norm_eps = 1e-5F;
  c.tie_word_embeddings = false;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

/// Runs `f`; a kvsieve::error is a rejected input, anything else propagates (a crash).
template <class F>
void expect_only_kvsieve_errors(F&& f) {
  try {
    f();
  } catch (const kvsieve::error&) {
  }
}

} // namespace fuzz
