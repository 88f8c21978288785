// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::model_weights: every weight of a LLaMA checkpoint as float, found by its Hugging Face
/// name in a model directory (model.safetensors, or the shards listed by
/// model.safetensors.index.json) and checked against the config's shapes.
/// Matrices are row-major [out, in], as nn.Linear stores them: y = x W^T.
/// F32 tensors are used in place inside the mapping when aligned; F16 / BF16 (and unaligned F32)
/// are converted once into storage owned by model_weights. Unknown extra tensors are ignored.
/// Every weight is checked to be finite once it is float: a NaN or infinity in a checkpoint would
/// otherwise run on silently and turn every logit into NaN.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>

#include <llama/config.hpp>
#include <llama/json_input.hpp>
#include <llama/safetensors.hpp>

namespace llama {

namespace detail {

/// The index of the first NaN or infinity in `v`, or v.size() if every value is finite.
/// One pass that vectorises (a branch-free OR over blocks of exponent tests); only the block
/// holding a bad value is searched again.
[[nodiscard]] inline auto first_non_finite(std::span<const float> v) noexcept -> std::size_t {
  constexpr std::size_t block = 4096;
  for (std::size_t b = 0; b < v.size(); b += block) {
    const auto part = v.subspan(b, std::min(block, v.size() - b));
    // |x| as bits > the largest finite float's bits: exponent all ones (inf or NaN).
    std::int32_t bad = 0;
    for (const float x : part) {
      const auto magnitude = std::bit_cast<std::int32_t>(x) & 0x7FFFFFFF;
      bad |= static_cast<std::int32_t>(magnitude > 0x7F7FFFFF);
    }
    if (bad != 0) {
      const auto it = std::find_if(part.begin(), part.end(),
                                   [](float x) { return !std::isfinite(x); });
      return b + static_cast<std::size_t>(it - part.begin());
    }
  }
  return v.size();
}

} // namespace detail

/// A read-only row-major matrix view: data[r * cols + c].
struct matrix {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;
};

/// One decoder layer; vectors are `const float*` of the length in the comment.
struct layer_weights {
  const float* attn_norm = nullptr; // [hidden]                       input_layernorm
  matrix wq;                        // [n_head * head_dim, hidden]    self_attn.q_proj
  matrix wk;                        // [n_head_kv * head_dim, hidden] self_attn.k_proj
  matrix wv;                        // [n_head_kv * head_dim, hidden] self_attn.v_proj
  matrix wo;                        // [hidden, n_head * head_dim]    self_attn.o_proj
  const float* mlp_norm = nullptr;  // [hidden]                       post_attention_layernorm
  matrix w_gate;                    // [intermediate, hidden]         mlp.gate_proj
  matrix w_up;                      // [intermediate, hidden]         mlp.up_proj
  matrix w_down;                    // [hidden, intermediate]         mlp.down_proj
};

/// The safetensors files of a checkpoint directory, looked up by tensor name.
class checkpoint {
public:
  /// Where a tensor lives; `file` is null when the checkpoint does not have it.
  struct located {
    std::shared_ptr<const safetensors_file> file;
    const tensor_info* info = nullptr;
  };

  /// Opens model_dir/model.safetensors.index.json and every shard it names when the index
  /// exists, else model_dir/model.safetensors. Throws errc::io naming the file at fault.
  [[nodiscard]] static auto open(const std::filesystem::path& model_dir) -> checkpoint {
    checkpoint c;
    const auto index = model_dir / "model.safetensors.index.json";
    const auto single = model_dir / "model.safetensors";
    std::error_code ec; // an unreadable directory surfaces below as "cannot open"
    if (std::filesystem::exists(index, ec)) {
      c.source_ = index;
      c.open_shards(index);
    } else {
      kvsieve::expects(std::filesystem::exists(single, ec), kvsieve::errc::io, [&] {
        return fmt::format("{}: no model.safetensors or model.safetensors.index.json",
                           model_dir.string());
      });
      c.source_ = single;
      c.files_.push_back(std::make_shared<const safetensors_file>(single));
    }
    return c;
  }

  /// The file naming the checkpoint's tensors: the index, or the single file.
  [[nodiscard]] auto source() const -> const std::filesystem::path& { return source_; }

  /// Finds `name`. Throws errc::io when the index lists it but its shard lacks it.
  [[nodiscard]] auto find(std::string_view name) const -> located {
    if (weight_map_.empty()) {
      return {files_.front(), files_.front()->find(name)};
    }
    const auto it = weight_map_.find(name);
    if (it == weight_map_.end()) {
      return {};
    }
    const auto& file = files_[it->second];
    const auto* info = file->find(name);
    kvsieve::expects(info != nullptr, kvsieve::errc::io, [&] {
      return fmt::format("{}: no tensor '{}', which {} places in this file", file->path().string(),
                         name, source_.string());
    });
    return {file, info};
  }

private:
  void open_shards(const std::filesystem::path& index) {
    const auto where = index.string();
    // A repeated tensor name would leave which shard holds it to the parser.
    const auto j = detail::read_json_file(index, detail::duplicate_keys::reject, max_index_bytes);
    const auto map = j.is_object() ? j.find("weight_map") : j.end();
    kvsieve::expects(map != j.end() && map->is_object() && !map->empty(), kvsieve::errc::io, [&] {
      return fmt::format("{}: field 'weight_map' is missing, not an object "
                         "or empty",
                         where);
    });
    std::map<std::string, std::size_t, std::less<>> shard_index; // file name -> files_ slot
    for (auto it = map->begin(); it != map->end(); ++it) {
      const auto& shard = it.value();
      // A plain file name keeps every shard inside the model directory.
      const auto* file = shard.is_string() ? &shard.get_ref<const std::string&>() : nullptr;
      const bool plain = file != nullptr && !file->empty() && *file != "." && *file != ".." &&
                         file->find('\0') == std::string::npos &&
                         std::filesystem::path(*file).filename() == *file;
      kvsieve::expects(plain, kvsieve::errc::io, [&] {
        return fmt::format("{}: weight_map['{}'] = {} is not a file name in the model directory",
                           where, detail::printable(it.key()), detail::excerpt(shard));
      });
      const auto [slot, added] = shard_index.try_emplace(*file, files_.size());
      if (added) {
        files_.push_back(std::make_shared<const safetensors_file>(index.parent_path() / *file));
      }
      weight_map_.emplace(it.key(), slot->second);
    }
  }

  // The index of a checkpoint with a million tensors is about 100 MB.
  static constexpr std::uintmax_t max_index_bytes = std::uintmax_t{256} << 20U;

  std::filesystem::path source_;
  std::vector<std::shared_ptr<const safetensors_file>> files_;
  std::map<std::string, std::size_t, std::less<>> weight_map_; // tensor -> files_ slot; sharded
};

/// The weights of a LLaMA model. Move-only: the views point into storage it owns (converted
/// tensors) or keeps alive (mappings of F32 tensors used in place).
struct model_weights {
  matrix embed;                      // [vocab, hidden]  model.embed_tokens
  std::vector<layer_weights> layers; // n_layer
  const float* norm = nullptr;       // [hidden]         model.norm
  matrix lm_head;                    // [vocab, hidden]  lm_head, or embed when tied

  model_weights() = default;
  model_weights(model_weights&&) noexcept = default;
  auto operator=(model_weights&&) noexcept -> model_weights& = default;
  model_weights(const model_weights&) = delete; // a copy's views would point into this one
  auto operator=(const model_weights&) -> model_weights& = delete;
  ~model_weights() = default;

  /// Loads every tensor the forward pass needs from `model_dir` (see checkpoint::open).
  /// Throws kvsieve::error: errc::io for unreadable or malformed files, a missing tensor or an
  /// unsupported dtype; errc::shape_mismatch for a tensor whose shape disagrees with `cfg`;
  /// errc::invalid_argument for a config with non-positive sizes. Messages name the file and
  /// the tensor, with the expected and actual shapes.
  [[nodiscard]] static auto load(const std::filesystem::path& model_dir, const config& cfg)
      -> model_weights {
    using field = std::pair<std::string_view, std::int32_t>;
    for (const auto& f :
         {field{"hidden_size", cfg.hidden_size}, field{"intermediate_size", cfg.intermediate_size},
          field{"n_layer", cfg.n_layer}, field{"n_head", cfg.n_head},
          field{"n_head_kv", cfg.n_head_kv}, field{"head_dim", cfg.head_dim},
          field{"vocab_size", cfg.vocab_size}}) {
      kvsieve::expects(f.second > 0, kvsieve::errc::invalid_argument, [&] {
        return fmt::format("config.{} = {} must be positive", f.first, f.second);
      });
    }
    const auto size = [](std::int32_t v) { return static_cast<std::size_t>(v); };
    const std::size_t hidden = size(cfg.hidden_size);
    const std::size_t inter = size(cfg.intermediate_size);
    const std::size_t vocab = size(cfg.vocab_size);
    const std::size_t q_dim = size(cfg.n_head) * size(cfg.head_dim);
    const std::size_t kv_dim = size(cfg.n_head_kv) * size(cfg.head_dim);

    try {
      return load_checked(model_dir, cfg, hidden, inter, vocab, q_dim, kv_dim);
    } catch (const std::bad_alloc&) { // read_floats names the tensor; this is the bookkeeping
      kvsieve::raise(kvsieve::errc::out_of_memory,
                     fmt::format("{}: not enough memory to load the weights", model_dir.string()));
    }
  }

private:
  [[nodiscard]] static auto load_checked(const std::filesystem::path& model_dir,
                                         const config& cfg, std::size_t hidden, std::size_t inter,
                                         std::size_t vocab, std::size_t q_dim, std::size_t kv_dim)
      -> model_weights {
    const auto ckpt = checkpoint::open(model_dir);
    model_weights w;
    w.embed = w.take_matrix(ckpt, "model.embed_tokens.weight", vocab, hidden);
    for (std::int32_t l = 0; l < cfg.n_layer; ++l) {
      const auto at = [&](std::string_view what) {
        return fmt::format("model.layers.{}.{}.weight", l, what);
      };
      layer_weights lw;
      lw.attn_norm = w.take_vector(ckpt, at("input_layernorm"), hidden);
      lw.wq = w.take_matrix(ckpt, at("self_attn.q_proj"), q_dim, hidden);
      lw.wk = w.take_matrix(ckpt, at("self_attn.k_proj"), kv_dim, hidden);
      lw.wv = w.take_matrix(ckpt, at("self_attn.v_proj"), kv_dim, hidden);
      lw.wo = w.take_matrix(ckpt, at("self_attn.o_proj"), hidden, q_dim);
      lw.mlp_norm = w.take_vector(ckpt, at("post_attention_layernorm"), hidden);
      lw.w_gate = w.take_matrix(ckpt, at("mlp.gate_proj"), inter, hidden);
      lw.w_up = w.take_matrix(ckpt, at("mlp.up_proj"), inter, hidden);
      lw.w_down = w.take_matrix(ckpt, at("mlp.down_proj"), hidden, inter);
      w.layers.push_back(lw);
    }
    w.norm = w.take_vector(ckpt, "model.norm.weight", hidden);
    // Tied, HF uses the embedding whether or not the file also stores lm_head.weight.
    w.lm_head =
        cfg.tie_word_embeddings ? w.embed : w.take_matrix(ckpt, "lm_head.weight", vocab, hidden);
    return w;
  }

  auto take_matrix(const checkpoint& ckpt, std::string_view name, std::size_t rows,
                   std::size_t cols) -> matrix {
    return {take(ckpt, name, {rows, cols}), rows, cols};
  }
  auto take_vector(const checkpoint& ckpt, std::string_view name, std::size_t n) -> const float* {
    return take(ckpt, name, {n});
  }

  // The tensor `name` as float, after checking its shape.
  auto take(const checkpoint& ckpt, std::string_view name, std::vector<std::size_t> expected)
      -> const float* {
    const auto found = ckpt.find(name);
    kvsieve::expects(found.info != nullptr, kvsieve::errc::io, [&] {
      return fmt::format("{}: missing tensor '{}' (expected shape {})", ckpt.source().string(),
                         name, format_shape(expected));
    });
    kvsieve::expects(found.info->shape == expected, kvsieve::errc::shape_mismatch, [&] {
      return fmt::format("{}: tensor '{}' has shape {}, expected {}", found.file->path().string(),
                         name, format_shape(found.info->shape), format_shape(expected));
    });
    const std::size_t n = found.info->n_elements;
    const float* data = found.file->f32_data(name);
    std::size_t bad = n; // the first non-finite element
    if (data != nullptr) {
      if (std::find(mapped_.begin(), mapped_.end(), found.file) == mapped_.end()) {
        mapped_.push_back(found.file);
      }
      bad = detail::first_non_finite({data, n});
    } else {
      // Moving a std::vector keeps its buffer, so growing owned_ leaves earlier views valid.
      auto& values = owned_.emplace_back(found.file->allocate_floats(name));
      data = values.data();
      // Converted and checked a block at a time, while the block is in cache: one pass.
      constexpr std::size_t block = 16384;
      for (std::size_t first = 0; first < n && bad == n; first += block) {
        const auto part = std::span(values).subspan(first, std::min(block, n - first));
        found.file->read_floats(name, part, first);
        const auto k = detail::first_non_finite(part);
        bad = k < part.size() ? first + k : n;
      }
    }
    kvsieve::expects(bad == n, kvsieve::errc::io, [&] {
      const auto cols = expected.back();
      return fmt::format("{}: tensor '{}' holds {} at element {}{}; the checkpoint is damaged",
                         found.file->path().string(), name, data[bad], bad,
                         expected.size() == 2
                             ? fmt::format(" (row {}, column {})", bad / cols, bad % cols)
                             : std::string());
    });
    return data;
  }

  std::vector<std::vector<float>> owned_;                       // converted tensors
  std::vector<std::shared_ptr<const safetensors_file>> mapped_; // files with in-place tensors
};

} // namespace llama
