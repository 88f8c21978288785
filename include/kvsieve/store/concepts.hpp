// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The `kv_store` concept: ragged per-(sequence, layer, KV head) storage of post-RoPE keys, values
/// and per-token metadata. Vocabulary after llama.cpp's sequence operations.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include <kvsieve/core/space.hpp>
#include <kvsieve/core/token_class.hpp>
#include <kvsieve/policy/select.hpp>

namespace kvsieve {

/// Which head: sequence, layer, KV head.
struct head_id {
  std::int32_t seq = 0;
  std::int32_t layer = 0;
  std::int32_t head = 0;
  friend constexpr auto operator==(const head_id&, const head_id&) -> bool = default;
};

/// Per-token metadata stored beside K and V (fastgen-spec §2: the score costs 1/head_dim of KV).
struct token_meta {
  std::int32_t position = 0;                      ///< absolute position, never re-indexed
  float score = 0.0F;                             ///< accumulated attention (frequent)
  token_class cls = token_class::none;            ///< special / punctuation bits
  keep_reason reason = keep_reason::rule;         ///< which policy part keeps it
};

/// Store geometry. Every count must be > 0; max_pages 0 means the pool grows without bound.
struct store_geometry {
  std::int32_t n_seq = 1;
  std::int32_t n_layer = 1;
  std::int32_t n_head_kv = 1;
  std::int32_t head_dim = 64;
  std::int32_t page_size = 16; ///< tokens per page
  std::size_t max_pages = 0;   ///< pool capacity in pages (0: unbounded)
};

/// A kv_store S:
///  1. `S::value_type` (key/value element) and `S::memory_space`;
///  2. `s.geometry()`; `s.size(head)`: resident tokens of a head, O(1);
///  3. `s.append(head, key, value, meta) -> slot`: O(head_dim); slots stay dense [0, size);
///     throws errc::out_of_memory and leaves the store unchanged when the pool is exhausted;
///  4. `s.erase(head, slot) -> moved_from`: O(head_dim); the last token moves into `slot` (its old
///     slot is returned, -1 if `slot` was last) and an emptied page returns to the pool;
///  5. `s.bytes_resident()`: bytes of the pages in use, metadata included, O(1).
/// Not required: host access to the data (device stores), thread safety.
template <class S>
concept kv_store = requires(S& s, const S& cs, head_id h, std::span<const float> row,
                            token_meta meta, std::int32_t slot) {
  typename S::value_type;
  requires memory_space<typename S::memory_space>;
  { cs.geometry() } -> std::convertible_to<const store_geometry&>;
  { cs.size(h) } -> std::same_as<std::int32_t>;
  { s.append(h, row, row, meta) } -> std::same_as<std::int32_t>;
  { s.erase(h, slot) } -> std::same_as<std::int32_t>;
  { cs.bytes_resident() } -> std::same_as<std::size_t>;
};

} // namespace kvsieve
