// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Test helpers for examples/llama's loaders: a temporary directory, a safetensors writer laid
/// out as huggingface/safetensors lays files out (header padded with spaces to 8 bytes, tensors
/// back to back), a tiny LLaMA config and its tensors, and error capture. Shared by
/// weights_test.cpp and bad_checkpoint_test.cpp.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <common/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/numeric.hpp>

#include <llama/config.hpp>
#include <llama/weights.hpp>

namespace llama_test {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A fresh directory under the system temp dir, removed with everything in it.
class temp_dir {
public:
  temp_dir() {
    std::random_device rd;
    const auto base = fs::temp_directory_path();
    for (;;) {
      path_ = base / fmt::format("kvsieve-weights-test-{:08x}{:08x}", rd(), rd());
      if (fs::create_directory(path_)) {
        return;
      }
    }
  }
  temp_dir(const temp_dir&) = delete;
  auto operator=(const temp_dir&) -> temp_dir& = delete;
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  [[nodiscard]] auto path() const -> const fs::path& { return path_; }
  [[nodiscard]] auto operator/(std::string_view name) const -> fs::path { return path_ / name; }

private:
  fs::path path_;
};

inline void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// One tensor to write: its bytes, and (for the model cases) the floats they encode.
struct tensor_entry {
  std::string name;
  std::string dtype;
  std::vector<std::size_t> shape;
  std::string bytes;
  std::vector<float> values;
};

template <class T>
inline auto raw_bytes(const std::vector<T>& v) -> std::string {
  std::string out(v.size() * sizeof(T), '\0');
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

inline auto encode(const std::vector<float>& v, std::string_view dtype) -> std::string {
  if (dtype == "F32") {
    return raw_bytes(v);
  }
  std::vector<std::uint16_t> bits;
  for (const float x : v) {
    bits.push_back(dtype == "F16" ? kvsieve::half::from_float(x).bits
                                  : kvsieve::bfloat16::from_float(x).bits);
  }
  return raw_bytes(bits);
}

// The header a writer would produce for `tensors`, offsets back to back.
inline auto header_of(const std::vector<tensor_entry>& tensors) -> json {
  json h = json::object();
  h["__metadata__"] = {{"format", "pt"}};
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype},
                 {"shape", t.shape},
                 {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  return h;
}

// A whole file: u64 length, header (padded with spaces to 8 bytes, plus `misalign` more), data.
inline auto file_bytes(const std::string& header_text, const std::vector<tensor_entry>& tensors,
                       std::size_t misalign = 0) -> std::string {
  std::string header = header_text;
  while ((8 + header.size()) % 8 != 0) {
    header += ' ';
  }
  header.append(misalign, ' ');
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out += header;
  for (const auto& t : tensors) {
    out += t.bytes;
  }
  return out;
}

inline void write_safetensors(const fs::path& path, const std::vector<tensor_entry>& tensors,
                              std::size_t misalign = 0) {
  write_file(path, file_bytes(header_of(tensors).dump(), tensors, misalign));
}

// A tiny LLaMA with every head count and size distinct enough to catch a swapped extent:
// hidden 8, intermediate 12, 2 layers, 2 query heads and 1 KV head of 4 dims, vocab 10.
inline auto tiny_config() -> json {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", 8},
          {"intermediate_size", 12},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 2},
          {"num_key_value_heads", 1},
          {"head_dim", 4},
          {"vocab_size", 10},
          {"max_position_embeddings", 32},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"tie_word_embeddings", true},
          {"bos_token_id", 1},
          {"eos_token_id", 2},
          {"hidden_act", "silu"},
          {"rope_scaling", nullptr},
          {"attention_bias", false},
          {"torch_dtype", "float32"}};
}

// Every tensor of the tiny model in HF order. Tensor k holds k + (i % 4) / 4 at element i:
// exact in F16 and BF16, and different in every tensor.
inline auto tiny_tensors(std::string_view dtype, bool with_lm_head)
    -> std::vector<tensor_entry> {
  std::vector<std::pair<std::string, std::vector<std::size_t>>> specs = {
      {"model.embed_tokens.weight", {10, 8}}};
  for (int l = 0; l < 2; ++l) {
    const auto at = [&](std::string_view what) {
      return fmt::format("model.layers.{}.{}.weight", l, what);
    };
    specs.push_back({at("input_layernorm"), {8}});
    specs.push_back({at("self_attn.q_proj"), {8, 8}});
    specs.push_back({at("self_attn.k_proj"), {4, 8}});
    specs.push_back({at("self_attn.v_proj"), {4, 8}});
    specs.push_back({at("self_attn.o_proj"), {8, 8}});
    specs.push_back({at("post_attention_layernorm"), {8}});
    specs.push_back({at("mlp.gate_proj"), {12, 8}});
    specs.push_back({at("mlp.up_proj"), {12, 8}});
    specs.push_back({at("mlp.down_proj"), {8, 12}});
  }
  specs.push_back({"model.norm.weight", {8}});
  if (with_lm_head) {
    specs.push_back({"lm_head.weight", {10, 8}});
  }
  std::vector<tensor_entry> out;
  for (const auto& [name, shape] : specs) {
    std::size_t n = 1;
    for (const auto e : shape) {
      n *= e;
    }
    std::vector<float> values(n);
    for (std::size_t i = 0; i < n; ++i) {
      values[i] = static_cast<float>(out.size()) + static_cast<float>(i % 4) * 0.25F;
    }
    out.push_back({name, std::string(dtype), shape, encode(values, dtype), values});
  }
  return out;
}

inline auto entry(std::vector<tensor_entry>& tensors, std::string_view name) -> tensor_entry& {
  const auto it = std::find_if(tensors.begin(), tensors.end(),
                               [&](const tensor_entry& t) { return t.name == name; });
  REQUIRE(it != tensors.end());
  return *it;
}

inline auto holds(const float* data, const std::vector<float>& expected) -> bool {
  return data != nullptr && std::equal(expected.begin(), expected.end(), data);
}

// A model directory: config.json and model.safetensors.
inline void write_model(const temp_dir& dir, const json& cfg,
                        const std::vector<tensor_entry>& tensors) {
  write_file(dir / "config.json", cfg.dump(2));
  write_safetensors(dir / "model.safetensors", tensors);
}

inline auto load_weights(const temp_dir& dir) -> llama::model_weights {
  return llama::model_weights::load(dir.path(), llama::config::load(dir.path()));
}

struct caught {
  kvsieve::errc code = kvsieve::errc::bad_state;
  std::string what;
};

// The kvsieve::error `f` throws; fails the test if it returns (other exceptions propagate).
template <class F>
inline auto error_from(F&& f) -> caught {
  try {
    std::forward<F>(f)();
  } catch (const kvsieve::error& e) {
    return {e.code(), e.what()};
  }
  FAIL("no kvsieve::error was thrown");
  return {};
}

inline auto contains(std::string_view text, std::string_view part) -> bool {
  return text.find(part) != std::string_view::npos;
}

} // namespace llama_test
