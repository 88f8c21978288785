// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is model.safetensors.index.json, in a directory that also holds
// two valid shards of the tiny model (fuzz_common.hpp), model-00001-of-00002.safetensors (the
// embedding and layer 0) and model-00002-of-00002.safetensors (the rest), and a file
// broken.safetensors that is not one. The checkpoint is loaded by llama::model_weights.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <llama/weights.hpp>

#include "fuzz_common.hpp"

namespace {

// A safetensors file of F32 tensors with the given names and shapes, values all 0.5.
auto shard(const std::vector<std::pair<std::string, std::vector<std::size_t>>>& tensors)
    -> std::string {
  nlohmann::json header = nlohmann::json::object();
  std::size_t offset = 0;
  for (const auto& [name, shape] : tensors) {
    std::size_t n = 4;
    for (const auto e : shape) {
      n *= e;
    }
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  auto text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const std::uint64_t len = text.size();
  std::memcpy(out.data(), &len, 8);
  out += text;
  const float half = 0.5F;
  for (std::size_t i = 0; i < offset / 4; ++i) {
    out.append(reinterpret_cast<const char*>(&half), 4);
  }
  return out;
}

auto make_dir() -> fuzz::fs::path {
  auto dir = fuzz::scratch_dir() / "index";
  fuzz::fs::create_directories(dir);
  using spec = std::pair<std::string, std::vector<std::size_t>>;
  std::vector<spec> first = {{"model.embed_tokens.weight", {10, 8}}};
  std::vector<spec> second;
  for (int l = 0; l < 2; ++l) {
    auto& to = l == 0 ? first : second;
    const auto at = [&](const char* what) {
      return fmt::format("model.layers.{}.{}.weight", l, what);
    };
    to.push_back({at("input_layernorm"), {8}});
    to.push_back({at("self_attn.q_proj"), {8, 8}});
    to.push_back({at("self_attn.k_proj"), {4, 8}});
    to.push_back({at("self_attn.v_proj"), {4, 8}});
    to.push_back({at("self_attn.o_proj"), {8, 8}});
    to.push_back({at("post_attention_layernorm"), {8}});
    to.push_back({at("mlp.gate_proj"), {12, 8}});
    to.push_back({at("mlp.up_proj"), {12, 8}});
    to.push_back({at("mlp.down_proj"), {8, 12}});
  }
  second.push_back({"model.norm.weight", {8}});
  second.push_back({"lm_head.weight", {10, 8}});
  fuzz::write_file(dir / "model-00001-of-00002.safetensors", shard(first));
  fuzz::write_file(dir / "model-00002-of-00002.safetensors", shard(second));
  fuzz::write_file(dir / "broken.safetensors", "\x10\0\0\0\0\0\0\0{\"a\": [1, 2}    ");
  return dir;
}

} // namespace

extern "C" auto LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) -> int {
  static const auto dir = make_dir();
  fuzz::write_file(dir / "model.safetensors.index.json", fuzz::as_text(data, size));
  fuzz::expect_only_kvsieve_errors([&] {
    const auto w = llama::model_weights::load(dir, fuzz::tiny_config());
    // Every shard holds 0.5 everywhere: an accepted index found real tensors.
    fuzz::check(w.embed.rows == 10 && w.embed.cols == 8 && w.embed.data[79] == 0.5F,
                "the embedding was read");
    fuzz::check(w.lm_head.data[0] == 0.5F && w.norm[7] == 0.5F, "lm_head and norm were read");
  });
  return 0;
}
