// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::config: the hyperparameters of a LLaMA-architecture checkpoint, read from a Hugging Face
/// config.json (LlamaConfig / MistralConfig field names). load() checks every field it reads and
/// rejects the features this decoder does not implement (rope scaling, biases, sliding windows,
/// other activations, quantised weights) instead of silently computing something else. Every
/// error is a kvsieve::error whose message names the file and the field and quotes at most a
/// short excerpt of the value at fault.
/// RoPE comes in two spellings: top-level `rope_theta` / `rope_scaling` (transformers 4) and
/// `rope_parameters: {"rope_type": ..., "rope_theta": ...}` (transformers 5). Both are read; a
/// rope_type other than "default" is rejected, and so is a theta given twice with two values.

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>

#include <llama/json_input.hpp>

namespace llama {

namespace detail {

// Reads typed fields of one JSON object and names the file and the field in every complaint.
// A field that is present but null counts as absent: HF writes `"head_dim": null` and
// `"num_key_value_heads": null` to mean "use the default". For a nested object, `prefix` names
// its path in messages ("rope_parameters.").
class json_fields {
public:
  json_fields(const nlohmann::json& obj, std::string source, std::string prefix = {})
      : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[nodiscard]] auto object() const -> const nlohmann::json& { return obj_; }
  [[nodiscard]] auto source() const -> const std::string& { return source_; }

  [[nodiscard]] auto has(std::string_view key) const -> bool {
    const auto it = obj_.find(key);
    return it != obj_.end() && !it->is_null();
  }

  [[nodiscard]] auto get(std::string_view key) const -> const nlohmann::json& {
    const auto it = obj_.find(key);
    kvsieve::expects(it != obj_.end() && !it->is_null(), kvsieve::errc::io, [&] {
      return fmt::format("{}: missing required field '{}'", source_, name(key));
    });
    return *it;
  }

  [[nodiscard]] auto integer(std::string_view key, const nlohmann::json& v) const -> std::int32_t {
    kvsieve::expects(v.is_number_integer(), kvsieve::errc::io, [&] {
      return fmt::format("{}: field '{}' must be an integer, got {}", source_, name(key),
                         excerpt(v));
    });
    const bool fits = v.is_number_unsigned()
                          ? v.get<std::uint64_t>() <= std::numeric_limits<std::int32_t>::max()
                          : v.get<std::int64_t>() >= std::numeric_limits<std::int32_t>::min() &&
                                v.get<std::int64_t>() <= std::numeric_limits<std::int32_t>::max();
    kvsieve::expects(fits, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("{}: field '{}' = {} does not fit in 32 bits", source_, name(key),
                         excerpt(v));
    });
    return static_cast<std::int32_t>(v.get<std::int64_t>());
  }
  [[nodiscard]] auto integer(std::string_view key) const -> std::int32_t {
    return integer(key, get(key));
  }

  /// A required integer that must be > 0.
  [[nodiscard]] auto positive(std::string_view key) const -> std::int32_t {
    const auto v = integer(key);
    kvsieve::expects(v > 0, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("{}: field '{}' must be positive, got {}", source_, name(key), v);
    });
    return v;
  }

  /// A finite number > 0 that fits in a float (integers are accepted: `"rope_theta": 10000`).
  [[nodiscard]] auto positive_float(std::string_view key) const -> float {
    return positive_float(key, get(key));
  }
  [[nodiscard]] auto positive_float(std::string_view key, const nlohmann::json& v) const
      -> float {
    kvsieve::expects(v.is_number(), kvsieve::errc::io, [&] {
      return fmt::format("{}: field '{}' must be a number, got {}", source_, name(key), excerpt(v));
    });
    // The range is checked on the double, and again on the float: a value far below float's
    // smallest denormal (1e-50, say) is positive as a double but rounds to zero as a float.
    const auto d = v.get<double>();
    const auto in_range = std::isfinite(d) && d > 0.0 &&
                          d <= static_cast<double>(std::numeric_limits<float>::max());
    const auto f = in_range ? static_cast<float>(d) : 0.0F;
    kvsieve::expects(f > 0.0F, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("{}: field '{}' must be a positive finite float32, got {}", source_,
                         name(key), excerpt(v));
    });
    return f;
  }

  [[nodiscard]] auto boolean(std::string_view key) const -> bool {
    const auto& v = get(key);
    kvsieve::expects(v.is_boolean(), kvsieve::errc::io, [&] {
      return fmt::format("{}: field '{}' must be true or false, got {}", source_, name(key),
                         excerpt(v));
    });
    return v.get<bool>();
  }

  [[nodiscard]] auto string(std::string_view key) const -> std::string {
    const auto& v = get(key);
    kvsieve::expects(v.is_string(), kvsieve::errc::io, [&] {
      return fmt::format("{}: field '{}' must be a string, got {}", source_, name(key), excerpt(v));
    });
    return v.get<std::string>();
  }
  /// string(key), shortened and escaped for a message.
  [[nodiscard]] auto quoted(std::string_view key) const -> std::string {
    return fmt::format("\"{}\"", printable(string(key), 60));
  }

  /// Throws invalid_argument "<file>: field '<key>' <what>" unless `ok`.
  void require(bool ok, std::string_view key, std::string_view what) const {
    kvsieve::expects(ok, kvsieve::errc::invalid_argument, [&] {
      return fmt::format("{}: field '{}' {}", source_, name(key), what);
    });
  }

private:
  [[nodiscard]] auto name(std::string_view key) const -> std::string {
    return prefix_ + std::string(key);
  }

  const nlohmann::json& obj_;
  std::string source_;
  std::string prefix_;
};

} // namespace detail

/// The hyperparameters the forward pass needs; names follow llama.cpp, comments give HF's.
struct config {
  std::int32_t hidden_size = 0;             ///< hidden_size: width of the residual stream
  std::int32_t intermediate_size = 0;       ///< intermediate_size: width of the SwiGLU MLP
  std::int32_t n_layer = 0;                 ///< num_hidden_layers
  std::int32_t n_head = 0;                  ///< num_attention_heads (query heads)
  std::int32_t n_head_kv = 0;               ///< num_key_value_heads; default n_head; divides it
  std::int32_t head_dim = 0;                ///< head_dim; default hidden_size / n_head; even
  std::int32_t vocab_size = 0;              ///< vocab_size
  std::int32_t max_position_embeddings = 0; ///< the longest context, prompt plus generation
  float rms_norm_eps = 0.0F;                ///< rms_norm_eps
  float rope_theta = 10000.0F;              ///< rope_theta or rope_parameters.rope_theta
  bool tie_word_embeddings = false;         ///< lm_head is the embedding matrix
  std::int32_t bos_token_id = 0;            ///< bos_token_id, inside the vocabulary
  std::vector<std::int32_t> eos_token_ids;  ///< eos_token_id: one id or a list; non-empty

  /// Reads and checks `model_dir/config.json`.
  /// Throws kvsieve::error: errc::io when the file is unreadable, is not JSON, lacks a required
  /// field or has one of the wrong JSON type; errc::invalid_argument for a value out of range
  /// (sizes <= 0, n_head % n_head_kv != 0, ids outside the vocabulary) or an unsupported feature.
  [[nodiscard]] static auto load(const std::filesystem::path& model_dir) -> config {
    const auto file = model_dir / "config.json";
    // Python's json, which transformers reads this file with, keeps the last of repeated keys.
    const auto j = detail::read_json_file(file, detail::duplicate_keys::last_wins, max_file_bytes);
    return from_json(j, file.string());
  }

  /// A config.json is a few KB; anything this large is not one.
  static constexpr std::uintmax_t max_file_bytes = std::uintmax_t{16} << 20U;

  /// Checks and converts an already parsed config object; `source` names it in error messages.
  /// Throws as load() does.
  [[nodiscard]] static auto from_json(const nlohmann::json& j, const std::string& source)
      -> config {
    kvsieve::expects(j.is_object(), kvsieve::errc::io, [&] {
      return fmt::format("{}: the top level must be a JSON object", source);
    });
    const detail::json_fields f(j, source);
    reject_unsupported(f);

    config c;
    c.hidden_size = f.positive("hidden_size");
    c.intermediate_size = f.positive("intermediate_size");
    c.n_layer = f.positive("num_hidden_layers");
    c.n_head = f.positive("num_attention_heads");
    c.n_head_kv = f.has("num_key_value_heads") ? f.positive("num_key_value_heads") : c.n_head;
    f.require(c.n_head % c.n_head_kv == 0, "num_key_value_heads",
              fmt::format("({}) must divide num_attention_heads ({})", c.n_head_kv, c.n_head));
    if (f.has("head_dim")) {
      c.head_dim = f.positive("head_dim");
    } else {
      f.require(c.hidden_size % c.n_head == 0, "head_dim",
                fmt::format("is absent and hidden_size ({}) is not a multiple of "
                            "num_attention_heads ({})",
                            c.hidden_size, c.n_head));
      c.head_dim = c.hidden_size / c.n_head;
    }
    // RoPE rotates pairs (x_i, x_{i + d/2}).
    f.require(c.head_dim % 2 == 0, "head_dim",
              fmt::format("({}) must be even for rotary embeddings", c.head_dim));
    c.vocab_size = f.positive("vocab_size");
    c.max_position_embeddings = f.positive("max_position_embeddings");
    c.rms_norm_eps = f.positive_float("rms_norm_eps");
    c.rope_theta = read_rope_theta(f);
    if (f.has("tie_word_embeddings")) {
      c.tie_word_embeddings = f.boolean("tie_word_embeddings");
    }

    const auto in_vocab = [&](std::string_view key, std::int32_t id) {
      f.require(id >= 0 && id < c.vocab_size, key,
                fmt::format("= {} is outside the vocabulary [0, {})", id, c.vocab_size));
    };
    c.bos_token_id = f.integer("bos_token_id");
    in_vocab("bos_token_id", c.bos_token_id);
    const auto& eos = f.get("eos_token_id");
    if (eos.is_array()) {
      f.require(!eos.empty(), "eos_token_id", "is an empty list");
      for (const auto& id : eos) {
        c.eos_token_ids.push_back(f.integer("eos_token_id", id));
      }
    } else {
      c.eos_token_ids.push_back(f.integer("eos_token_id", eos));
    }
    for (const auto id : c.eos_token_ids) {
      in_vocab("eos_token_id", id);
    }
    return c;
  }

private:
  // Each of these would change what the model computes; accepting them silently would produce
  // plausible but wrong logits.
  static void reject_unsupported(const detail::json_fields& f) {
    const auto model_type = f.string("model_type");
    f.require(model_type == "llama" || model_type == "mistral", "model_type",
              fmt::format("= {} is not supported (only the LLaMA architecture: \"llama\" or "
                          "\"mistral\")",
                          f.quoted("model_type")));
    if (f.has("hidden_act")) {
      f.require(f.string("hidden_act") == "silu", "hidden_act",
                fmt::format("= {} is not supported (only \"silu\")", f.quoted("hidden_act")));
    }
    // rope_scaling and rope_parameters: see read_rope_theta.
    for (const auto* bias : {"attention_bias", "mlp_bias"}) {
      f.require(!f.has(bias) || !f.boolean(bias), bias,
                "= true is not supported (the projections have no bias)");
    }
    f.require(!f.has("quantization_config"), "quantization_config",
              "is set: quantised checkpoints are not supported");
    // A window at least as long as the context never drops anything.
    if (f.has("sliding_window")) {
      const auto window = f.integer("sliding_window");
      const auto context = f.positive("max_position_embeddings");
      f.require(window >= context, "sliding_window",
                fmt::format("= {} is not supported (shorter than max_position_embeddings = {}; "
                            "this decoder attends to the whole context)",
                            window, context));
    }
  }

  // RoPE's base frequency: rope_parameters.rope_theta (transformers 5), else the top-level
  // rope_theta (transformers 4), else 10000; the two spellings must agree when both are given.
  // rope_parameters and rope_scaling are each null or a plain-RoPE block: rope_type (or the
  // older "type") "default" or absent, and at most a rope_theta besides; any other type or key
  // would change the frequencies (llama3, yarn, linear, partial_rotary_factor, per-layer-type
  // blocks) and is rejected.
  [[nodiscard]] static auto read_rope_theta(const detail::json_fields& f) -> float {
    std::vector<std::pair<std::string, float>> thetas; // (field, value) of each spelling given
    if (f.has("rope_theta")) {
      thetas.emplace_back("rope_theta", f.positive_float("rope_theta"));
    }
    for (const auto* block : {"rope_parameters", "rope_scaling"}) {
      if (!f.has(block)) {
        continue;
      }
      const auto& v = f.get(block);
      f.require(v.is_object(), block,
                fmt::format("= {} is not supported (only plain RoPE: an object with rope_type "
                            "\"default\", or null)",
                            detail::excerpt(v)));
      const detail::json_fields rope(v, f.source(), std::string(block) + ".");
      const auto unsupported = [&](const std::string& what) {
        return fmt::format("= {} is not supported: {} (only plain RoPE: rope_type \"default\" "
                           "and rope_theta)",
                           detail::excerpt(v), what);
      };
      for (const auto* type_key : {"rope_type", "type"}) {
        if (rope.has(type_key)) {
          const auto& type = rope.get(type_key);
          f.require(type.is_string() && type.get_ref<const std::string&>() == "default", block,
                    unsupported(fmt::format("{} {}", type_key, detail::excerpt(type, 40))));
        }
      }
      for (auto it = v.begin(); it != v.end(); ++it) {
        const auto& key = it.key();
        f.require(key == "rope_type" || key == "type" || key == "rope_theta", block,
                  unsupported(fmt::format("field '{}'", detail::printable(key, 40))));
      }
      if (rope.has("rope_theta")) {
        thetas.emplace_back(std::string(block) + ".rope_theta", rope.positive_float("rope_theta"));
      }
    }
    for (const auto& [field, theta] : thetas) {
      f.require(theta == thetas.front().second, field,
                fmt::format("= {} conflicts with {} = {}", theta, thetas.front().first,
                            thetas.front().second));
    }
    return thetas.empty() ? 10000.0F : thetas.front().second;
  }
};

} // namespace llama
