// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
/// Tests of examples/llama/{config,safetensors,weights}.hpp. The safetensors files are written
/// by the test itself (checkpoint_writer.hpp), so no fixture can drift from the cases.
/// F16 / BF16 values are given as bit patterns, independent of kvsieve's own converters.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
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
#include <llama/safetensors.hpp>
#include <llama/weights.hpp>

#include "checkpoint_writer.hpp"

using namespace llama_test;

// ---------------------------------------------------------------- safetensors_file

TEST_CASE("safetensors_file reads F32, F16 and BF16 tensors as float", "[llama][safetensors]") {
  const temp_dir dir;
  const std::vector<float> f32 = {1.5F, -2.25F, 0.0F, 3.0e38F, 1.0e-40F, -0.0F};
  // 1, -2, 0.5, 65504 (max), 2^-24 (smallest subnormal), -0, +inf
  const std::vector<std::uint16_t> f16 = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000, 0x7C00};
  // 1, -2, 0.15625, 2^-133 (subnormal), 0x7F7F (largest finite), -inf
  const std::vector<std::uint16_t> bf16 = {0x3F80, 0xC000, 0x3E20, 0x0001, 0x7F7F, 0xFF80};
  write_safetensors(dir / "t.safetensors",
                    {{"a.f32", "F32", {2, 3}, raw_bytes(f32), {}},
                     {"b.f16", "F16", {7}, raw_bytes(f16), {}},
                     {"c.bf16", "BF16", {3, 2}, raw_bytes(bf16), {}},
                     {"scalar", "F32", {}, raw_bytes(std::vector<float>{7.0F}), {}},
                     {"empty", "BF16", {0, 3}, "", {}}});
  const llama::safetensors_file file(dir / "t.safetensors");

  CHECK(file.tensors().size() == 5); // __metadata__ is not a tensor
  CHECK(file.tensor("a.f32").shape == std::vector<std::size_t>{2, 3});
  CHECK(file.tensor("c.bf16").dtype == "BF16");
  CHECK(file.find("absent") == nullptr);

  CHECK(file.read_floats("a.f32") == f32);
  CHECK(std::signbit(file.read_floats("a.f32")[5]));

  const auto h = file.read_floats("b.f16");
  CHECK(h[0] == 1.0F);
  CHECK(h[1] == -2.0F);
  CHECK(h[2] == 0.5F);
  CHECK(h[3] == 65504.0F);
  CHECK(h[4] == std::ldexp(1.0F, -24));
  CHECK((h[5] == 0.0F && std::signbit(h[5])));
  CHECK((std::isinf(h[6]) && h[6] > 0.0F));

  const auto b = file.read_floats("c.bf16");
  CHECK(b[0] == 1.0F);
  CHECK(b[1] == -2.0F);
  CHECK(b[2] == 0.15625F);
  CHECK(b[3] == std::ldexp(1.0F, -133));
  CHECK(b[4] == std::bit_cast<float>(0x7F7F0000U));
  CHECK((std::isinf(b[5]) && b[5] < 0.0F));

  CHECK(file.read_floats("scalar") == std::vector<float>{7.0F});
  CHECK(file.read_floats("empty").empty());

  // The writer pads the header to 8 bytes, so F32 data is aligned and used in place.
  const float* in_place = file.f32_data("a.f32");
  REQUIRE(in_place != nullptr);
  CHECK(std::equal(f32.begin(), f32.end(), in_place));
  CHECK(file.f32_data("b.f16") == nullptr);
}

TEST_CASE("safetensors_file copies F32 data that is not 4-byte aligned", "[llama][safetensors]") {
  const temp_dir dir;
  const std::vector<float> f32 = {0.25F, -8.0F, 1.0e30F};
  write_safetensors(dir / "t.safetensors", {{"x", "F32", {3}, raw_bytes(f32), {}}}, 2);
  const llama::safetensors_file file(dir / "t.safetensors");
  CHECK(file.f32_data("x") == nullptr);
  CHECK(file.read_floats("x") == f32);
}

// ---------------------------------------------------------------- config

TEST_CASE("config reads every field of config.json", "[llama][config]") {
  const temp_dir dir;
  auto j = tiny_config();
  j["head_dim"] = 6; // explicit, and not hidden_size / n_head
  j["rope_theta"] = 500000.0;
  j["rms_norm_eps"] = 1e-6;
  j["eos_token_id"] = {2, 9};
  write_file(dir / "config.json", j.dump());

  const auto c = llama::config::load(dir.path());
  CHECK(c.hidden_size == 8);
  CHECK(c.intermediate_size == 12);
  CHECK(c.n_layer == 2);
  CHECK(c.n_head == 2);
  CHECK(c.n_head_kv == 1);
  CHECK(c.head_dim == 6);
  CHECK(c.vocab_size == 10);
  CHECK(c.max_position_embeddings == 32);
  CHECK(c.rms_norm_eps == 1e-6F);
  CHECK(c.rope_theta == 500000.0F);
  CHECK(c.tie_word_embeddings);
  CHECK(c.bos_token_id == 1);
  CHECK(c.eos_token_ids == std::vector<std::int32_t>{2, 9});
}

TEST_CASE("config fills HF's defaults for absent or null optional fields", "[llama][config]") {
  const temp_dir dir;
  auto j = tiny_config();
  j.erase("head_dim");
  j.erase("rope_theta");
  j.erase("tie_word_embeddings");
  j.erase("hidden_act");
  j["num_key_value_heads"] = nullptr;
  j["eos_token_id"] = 3; // a single id
  j["model_type"] = "mistral";
  j["sliding_window"] = 32; // as long as the context: never drops anything
  j["rms_norm_eps"] = 1;    // an integer is a number
  write_file(dir / "config.json", j.dump());

  const auto c = llama::config::load(dir.path());
  CHECK(c.head_dim == 4);  // hidden_size / num_attention_heads
  CHECK(c.n_head_kv == 2); // num_attention_heads
  CHECK(c.rope_theta == 10000.0F);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.eos_token_ids == std::vector<std::int32_t>{3});
  CHECK(c.rms_norm_eps == 1.0F);

  j["head_dim"] = nullptr;
  write_file(dir / "config.json", j.dump());
  CHECK(llama::config::load(dir.path()).head_dim == 4);
}

namespace {

// Writes tiny_config() changed by `edit` and returns the error loading it throws.
template <class Edit>
auto config_error(Edit&& edit) -> caught {
  const temp_dir dir;
  auto j = tiny_config();
  edit(j);
  write_file(dir / "config.json", j.dump());
  auto e = error_from([&] { (void)llama::config::load(dir.path()); });
  INFO(e.what);
  CHECK(contains(e.what, (dir / "config.json").string()));
  return e;
}

} // namespace

TEST_CASE("config without a required field names the file and the field", "[llama][config]") {
  const auto e = config_error([](json& j) { j.erase("intermediate_size"); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, "'intermediate_size'"));
  CHECK(contains(e.what, "missing"));
}

TEST_CASE("config with a field of the wrong JSON type names the field", "[llama][config]") {
  const auto e = config_error([](json& j) { j["hidden_size"] = "8"; });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, "'hidden_size' must be an integer"));
}

TEST_CASE("config with n_head not a multiple of n_head_kv is rejected", "[llama][config]") {
  const auto e = config_error([](json& j) {
    j["num_attention_heads"] = 3;
    j["num_key_value_heads"] = 2;
  });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::invalid_argument);
  CHECK(contains(e.what, "'num_key_value_heads' (2) must divide num_attention_heads (3)"));
}

TEST_CASE("config with rope_scaling set is rejected", "[llama][config]") {
  const auto e = config_error([](json& j) {
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::invalid_argument);
  CHECK(contains(e.what, "'rope_scaling'"));
  CHECK(contains(e.what, "llama3"));
}

TEST_CASE("config rejects other unsupported features and out-of-range values, naming the field",
          "[llama][config]") {
  struct bad_case {
    std::string field;
    json value; // null: erase the field
  };
  const std::vector<bad_case> cases = {
      {"attention_bias", true},
      {"mlp_bias", true},
      {"hidden_act", "gelu"},
      {"model_type", "gpt2"},
      {"quantization_config", {{"quant_method", "gptq"}}},
      {"sliding_window", 16},
      {"hidden_size", 0},
      {"num_hidden_layers", -1},
      {"vocab_size", 5000000000LL},
      {"head_dim", 3},
      {"rms_norm_eps", 0.0},
      {"rms_norm_eps", 1e-50}, // positive as a double, zero as a float
      {"rms_norm_eps", 1e300}, // beyond float's range
      {"rope_theta", -1.0},
      {"tie_word_embeddings", "yes"},
      {"bos_token_id", 10},
      {"eos_token_id", {2, -1}},
      {"eos_token_id", json::array()},
      {"model_type", nullptr},
  };
  for (const auto& c : cases) {
    INFO(c.field << " = " << c.value.dump());
    const auto e = config_error([&](json& j) {
      if (c.value.is_null()) {
        j.erase(c.field);
      } else {
        j[c.field] = c.value;
      }
    });
    INFO(e.what);
    CHECK(contains(e.what, fmt::format("'{}'", c.field)));
  }
  // head_dim absent and hidden_size not divisible by the heads: no default to take.
  const auto e = config_error([](json& j) {
    j.erase("head_dim");
    j["hidden_size"] = 9;
  });
  INFO(e.what);
  CHECK(contains(e.what, "'head_dim' is absent"));
}

TEST_CASE("config errors for a missing or malformed config.json name the file", "[llama][config]") {
  const temp_dir dir;
  auto e = error_from([&] { (void)llama::config::load(dir.path()); });
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, (dir / "config.json").string()));

  write_file(dir / "config.json", "{\"hidden_size\": 8,");
  e = error_from([&] { (void)llama::config::load(dir.path()); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, (dir / "config.json").string()));
  CHECK(contains(e.what, "not valid JSON"));

  write_file(dir / "config.json", "[1, 2]");
  e = error_from([&] { (void)llama::config::load(dir.path()); });
  CHECK(contains(e.what, "JSON object"));
}

// ---------------------------------------------------------------- model_weights

TEST_CASE("model_weights loads a single-file checkpoint with the config's shapes",
          "[llama][weights]") {
  const temp_dir dir;
  auto tensors = tiny_tensors("F32", false);
  // Extra tensors are ignored, even of a dtype the reader cannot convert.
  tensors.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq",
                     "F32",
                     {2},
                     raw_bytes(std::vector<float>{1.0F, 0.01F}),
                     {}});
  tensors.push_back(
      {"model.position_ids", "I64", {3}, raw_bytes(std::vector<std::int64_t>{0, 1, 2}), {}});
  write_model(dir, tiny_config(), tensors);

  auto loaded = load_weights(dir);
  const auto w = std::move(loaded); // views survive a move and the end of load's checkpoint
  CHECK(w.embed.rows == 10);
  CHECK(w.embed.cols == 8);
  REQUIRE(w.layers.size() == 2);
  const auto& l1 = w.layers[1];
  CHECK((l1.wq.rows == 8 && l1.wq.cols == 8));
  CHECK((l1.wk.rows == 4 && l1.wk.cols == 8));
  CHECK((l1.wv.rows == 4 && l1.wv.cols == 8));
  CHECK((l1.wo.rows == 8 && l1.wo.cols == 8));
  CHECK((l1.w_gate.rows == 12 && l1.w_gate.cols == 8));
  CHECK((l1.w_up.rows == 12 && l1.w_up.cols == 8));
  CHECK((l1.w_down.rows == 8 && l1.w_down.cols == 12));

  CHECK(holds(w.embed.data, entry(tensors, "model.embed_tokens.weight").values));
  CHECK(
      holds(w.layers[0].attn_norm, entry(tensors, "model.layers.0.input_layernorm.weight").values));
  CHECK(holds(l1.wq.data, entry(tensors, "model.layers.1.self_attn.q_proj.weight").values));
  CHECK(holds(l1.wk.data, entry(tensors, "model.layers.1.self_attn.k_proj.weight").values));
  CHECK(holds(l1.wv.data, entry(tensors, "model.layers.1.self_attn.v_proj.weight").values));
  CHECK(holds(l1.wo.data, entry(tensors, "model.layers.1.self_attn.o_proj.weight").values));
  CHECK(
      holds(l1.mlp_norm, entry(tensors, "model.layers.1.post_attention_layernorm.weight").values));
  CHECK(holds(l1.w_gate.data, entry(tensors, "model.layers.1.mlp.gate_proj.weight").values));
  CHECK(holds(l1.w_up.data, entry(tensors, "model.layers.1.mlp.up_proj.weight").values));
  CHECK(holds(l1.w_down.data, entry(tensors, "model.layers.1.mlp.down_proj.weight").values));
  CHECK(holds(w.norm, entry(tensors, "model.norm.weight").values));
  // Tied: the output projection is the embedding itself.
  CHECK(w.lm_head.data == w.embed.data);
  CHECK((w.lm_head.rows == 10 && w.lm_head.cols == 8));
}

TEST_CASE("model_weights converts F16 and BF16 checkpoints, and unaligned F32",
          "[llama][weights]") {
  for (const std::string dtype : {"F16", "BF16", "F32"}) {
    CAPTURE(dtype);
    const temp_dir dir;
    auto tensors = tiny_tensors(dtype, true);
    auto cfg = tiny_config();
    cfg["tie_word_embeddings"] = false;
    write_file(dir / "config.json", cfg.dump());
    // F32 two bytes off 4-byte alignment is copied; F16 at odd addresses is read bytewise.
    write_safetensors(dir / "model.safetensors", tensors,
                      dtype == "F32"   ? 2
                      : dtype == "F16" ? 1
                                       : 0);
    const auto w = load_weights(dir);
    CHECK(holds(w.embed.data, entry(tensors, "model.embed_tokens.weight").values));
    CHECK(holds(w.layers[1].w_down.data,
                entry(tensors, "model.layers.1.mlp.down_proj.weight").values));
    CHECK(holds(w.lm_head.data, entry(tensors, "lm_head.weight").values));
    CHECK(w.lm_head.data != w.embed.data);
  }
}

TEST_CASE("model_weights loads a sharded checkpoint through its index", "[llama][weights]") {
  const temp_dir dir;
  auto tensors = tiny_tensors("BF16", true);
  auto cfg = tiny_config();
  cfg["tie_word_embeddings"] = false;
  write_file(dir / "config.json", cfg.dump());
  // Shard 1: the embedding and layer 0; shard 2: the rest.
  std::vector<tensor_entry> first;
  std::vector<tensor_entry> second;
  json weight_map = json::object();
  for (const auto& t : tensors) {
    const bool early = t.name.starts_with("model.embed") || t.name.starts_with("model.layers.0.");
    (early ? first : second).push_back(t);
    weight_map[t.name] =
        early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_safetensors(dir / "model-00001-of-00002.safetensors", first);
  write_safetensors(dir / "model-00002-of-00002.safetensors", second);
  write_file(dir / "model.safetensors.index.json",
             json{{"metadata", {{"total_size", 1234}}}, {"weight_map", weight_map}}.dump(2));
  write_file(dir / "model.safetensors", "junk"); // the index wins; this is never opened

  const auto w = load_weights(dir);
  CHECK(holds(w.embed.data, entry(tensors, "model.embed_tokens.weight").values));
  CHECK(
      holds(w.layers[0].wk.data, entry(tensors, "model.layers.0.self_attn.k_proj.weight").values));
  CHECK(
      holds(w.layers[1].wk.data, entry(tensors, "model.layers.1.self_attn.k_proj.weight").values));
  CHECK(holds(w.norm, entry(tensors, "model.norm.weight").values));
  CHECK(holds(w.lm_head.data, entry(tensors, "lm_head.weight").values));
}

// ---------------------------------------------------------------- errors

namespace {

// Loads a directory whose model.safetensors is `bytes`; returns the error, checked to name it.
auto weights_error_for_file(std::string_view bytes) -> caught {
  const temp_dir dir;
  write_file(dir / "config.json", tiny_config().dump());
  write_file(dir / "model.safetensors", bytes);
  auto e = error_from([&] { (void)load_weights(dir); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, (dir / "model.safetensors").string()));
  return e;
}

} // namespace

TEST_CASE("a safetensors file shorter than 8 bytes is an i/o error naming it",
          "[llama][safetensors][errors]") {
  const auto e = weights_error_for_file("abc");
  INFO(e.what);
  CHECK(contains(e.what, "3 bytes, shorter than the 8-byte header length"));
}

TEST_CASE("a header length past the end of the file is an i/o error",
          "[llama][safetensors][errors]") {
  const auto whole = file_bytes(header_of(tiny_tensors("F32", false)).dump(), {});
  const auto e = weights_error_for_file(whole.substr(0, whole.size() - 5));
  INFO(e.what);
  CHECK(contains(e.what, "runs past the end of the file"));
}

TEST_CASE("a data buffer shorter than the offsets is an i/o error naming the tensor",
          "[llama][safetensors][errors]") {
  const auto tensors = tiny_tensors("F32", false);
  const auto whole = file_bytes(header_of(tensors).dump(), tensors);
  const auto e = weights_error_for_file(whole.substr(0, whole.size() - 1));
  INFO(e.what);
  CHECK(contains(e.what, "'model.norm.weight'")); // the last tensor
  CHECK(contains(e.what, "run past the end of the data"));
}

TEST_CASE("a malformed JSON header is an i/o error", "[llama][safetensors][errors]") {
  const auto e = weights_error_for_file(file_bytes("{\"x\": {\"dtype\": \"F32\",", {}));
  INFO(e.what);
  CHECK(contains(e.what, "header: not valid JSON"));
  CHECK(contains(weights_error_for_file(file_bytes("[1]", {})).what, "not a JSON object"));
}

TEST_CASE("malformed header entries are i/o errors naming the tensor",
          "[llama][safetensors][errors]") {
  const std::vector<std::pair<json, std::string>> cases = {
      {json{{"dtype", "F32"}}, "'shape'"},
      {{{"dtype", 4}, {"shape", {1}}, {"data_offsets", {0, 4}}}, "'dtype'"},
      {{{"dtype", "F32"}, {"shape", {-1}}, {"data_offsets", {0, 4}}}, "'shape' holds"},
      {{{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0}}}, "'data_offsets'"},
      {{{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {4, 0}}}, "end before they begin"},
      {{{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 4}}}, "4 bytes between"},
      {{{"dtype", "BF16"}, {"shape", {3}}, {"data_offsets", {0, 4}}}, "needs 6"},
      {{{"dtype", "F32"}, {"shape", {1ULL << 62, 8}}, {"data_offsets", {0, 4}}}, "shape"},
  };
  for (const auto& [entry_json, expected] : cases) {
    CAPTURE(entry_json.dump());
    const auto e = weights_error_for_file(file_bytes(json{{"bad.tensor", entry_json}}.dump(), {}) +
                                          std::string(8, '\0'));
    INFO(e.what);
    CHECK(contains(e.what, "'bad.tensor'"));
    CHECK(contains(e.what, expected));
  }
}

TEST_CASE("a missing tensor names the file, the tensor and the expected shape",
          "[llama][weights][errors]") {
  const temp_dir dir;
  auto tensors = tiny_tensors("F32", false);
  std::erase_if(
      tensors, [](const tensor_entry& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
  write_model(dir, tiny_config(), tensors);
  const auto e = error_from([&] { (void)load_weights(dir); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, (dir / "model.safetensors").string()));
  CHECK(contains(e.what, "missing tensor 'model.layers.1.mlp.up_proj.weight'"));
  CHECK(contains(e.what, "[12, 8]"));
}

TEST_CASE("an untied model without lm_head.weight is an error naming the tensor",
          "[llama][weights][errors]") {
  const temp_dir dir;
  auto cfg = tiny_config();
  cfg["tie_word_embeddings"] = false;
  write_model(dir, cfg, tiny_tensors("F32", false));
  const auto e = error_from([&] { (void)load_weights(dir); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, (dir / "model.safetensors").string()));
  CHECK(contains(e.what, "missing tensor 'lm_head.weight'"));
}

TEST_CASE("a misshapen tensor names the file, the tensor and both shapes",
          "[llama][weights][errors]") {
  const temp_dir dir;
  auto tensors = tiny_tensors("F32", false);
  auto& k = entry(tensors, "model.layers.0.self_attn.k_proj.weight");
  k.shape = {8, 4}; // the transpose of [4, 8]: same bytes, wrong layout
  write_model(dir, tiny_config(), tensors);
  const auto e = error_from([&] { (void)load_weights(dir); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::shape_mismatch);
  CHECK(contains(e.what, (dir / "model.safetensors").string()));
  CHECK(contains(e.what,
                 "'model.layers.0.self_attn.k_proj.weight' has shape [8, 4], expected [4, 8]"));
}

TEST_CASE("an unsupported dtype names the file, the tensor and the dtype",
          "[llama][weights][errors]") {
  using dtype_case = std::pair<std::string, std::size_t>; // dtype, bytes per element
  for (const auto& [dtype, bytes] : {dtype_case{"I8", 1}, dtype_case{"F64", 8}}) {
    CAPTURE(dtype);
    const temp_dir dir;
    auto tensors = tiny_tensors("F32", false);
    auto& norm = entry(tensors, "model.norm.weight");
    norm.dtype = dtype;
    norm.bytes.assign(8 * bytes, '\0');
    write_model(dir, tiny_config(), tensors);
    const auto e = error_from([&] { (void)load_weights(dir); });
    INFO(e.what);
    CHECK(e.code == kvsieve::errc::io);
    CHECK(contains(e.what, (dir / "model.safetensors").string()));
    CHECK(contains(e.what, "'model.norm.weight'"));
    CHECK(contains(e.what, "dtype " + dtype));
  }
}

TEST_CASE("a directory without safetensors files is an i/o error naming it",
          "[llama][weights][errors]") {
  const temp_dir dir;
  write_file(dir / "config.json", tiny_config().dump());
  const auto e = error_from([&] { (void)load_weights(dir); });
  INFO(e.what);
  CHECK(e.code == kvsieve::errc::io);
  CHECK(contains(e.what, dir.path().string()));
  CHECK(contains(e.what, "no model.safetensors"));
}

TEST_CASE("bad shard indexes are i/o errors naming the index or the shard",
          "[llama][weights][errors]") {
  const temp_dir dir;
  write_file(dir / "config.json", tiny_config().dump());
  const auto index = dir / "model.safetensors.index.json";
  const auto load_error = [&](const std::string& index_text) {
    write_file(index, index_text);
    auto e = error_from([&] { (void)load_weights(dir); });
    INFO(e.what);
    CHECK(e.code == kvsieve::errc::io);
    return e;
  };

  auto e = load_error("{\"weight_map\": ");
  CHECK(contains(e.what, index.string()));
  CHECK(contains(e.what, "not valid JSON"));

  e = load_error(R"({"metadata": {}})");
  CHECK(contains(e.what, index.string()));
  CHECK(contains(e.what, "'weight_map'"));

  e = load_error(R"({"weight_map": {"model.norm.weight": "../elsewhere.safetensors"}})");
  CHECK(contains(e.what, index.string()));
  CHECK(contains(e.what, "weight_map['model.norm.weight']"));

  e = load_error(R"({"weight_map": {"model.norm.weight": "absent.safetensors"}})");
  CHECK(contains(e.what, (dir / "absent.safetensors").string()));
  CHECK(contains(e.what, "cannot open"));

  // The index places the embedding in a shard that lacks it.
  write_safetensors(dir / "shard.safetensors",
                    {{"other", "F32", {1}, raw_bytes(std::vector<float>{1}), {}}});
  e = load_error(R"({"weight_map": {"model.embed_tokens.weight": "shard.safetensors"}})");
  INFO(e.what);
  CHECK(contains(e.what, (dir / "shard.safetensors").string()));
  CHECK(contains(e.what, "'model.embed_tokens.weight'"));

  // A tensor the index does not list is missing; the message names the index.
  e = load_error(R"({"weight_map": {"other": "shard.safetensors"}})");
  CHECK(contains(e.what, index.string()));
  CHECK(contains(e.what, "missing tensor 'model.embed_tokens.weight'"));
}

// ---------------------------------------------------------------- checkpoints on disk

namespace {

// Loads a real checkpoint directory when it is there; warns and passes when it is not.
void check_checkpoint_on_disk(const fs::path& dir) {
  const bool present =
      fs::exists(dir / "config.json") &&
      (fs::exists(dir / "model.safetensors") || fs::exists(dir / "model.safetensors.index.json"));
  if (!present) {
    WARN("skipped: no checkpoint in " << dir.string());
    return;
  }
  const auto cfg = llama::config::load(dir);
  const auto w = llama::model_weights::load(dir, cfg);
  const auto size = [](std::int32_t v) { return static_cast<std::size_t>(v); };
  CHECK(w.embed.rows == size(cfg.vocab_size));
  CHECK(w.embed.cols == size(cfg.hidden_size));
  REQUIRE(w.layers.size() == size(cfg.n_layer));
  const auto& last = w.layers.back();
  CHECK(last.wq.rows == size(cfg.n_head * cfg.head_dim));
  CHECK(last.wk.rows == size(cfg.n_head_kv * cfg.head_dim));
  CHECK(last.w_down.cols == size(cfg.intermediate_size));
  CHECK(w.lm_head.rows == size(cfg.vocab_size));
  // Trained or random weights are finite and not all zero.
  const auto n = w.embed.rows * w.embed.cols;
  CHECK(std::all_of(w.embed.data, w.embed.data + n, [](float x) { return std::isfinite(x); }));
  CHECK(std::any_of(w.norm, w.norm + w.embed.cols, [](float x) { return x != 0.0F; }));
}

} // namespace

TEST_CASE("the bundled tiny-llama loads with its config's shapes", "[llama][weights][model]") {
  check_checkpoint_on_disk(fs::path(KVSIEVE_MODELS_DIR) / "tiny-llama");
}

TEST_CASE("the random-mha test model, written by Python safetensors, loads",
          "[llama][weights][model]") {
  check_checkpoint_on_disk(fs::path(KVSIEVE_TEST_DATA_DIR) / "random-mha");
}
