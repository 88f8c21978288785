// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// page_layout: where each field of a token lies inside one page of paged_store<T, Space>, host or
/// device (the two share it byte for byte), for kernels that walk a head's block table:
///   keys [page_size, head_dim] T | values [page_size, head_dim] T | positions [page_size] int32 |
///   scores [page_size] float | classes [page_size] u8 | reasons [page_size] u8 | pad to 64 bytes.
/// Token slot s of a head lives on page page_ids[s / page_size], row r = s % page_size; field f
/// of that token is at page_address + f.offset + r * f.stride.

#include <cstddef>
#include <cstdint>

#include <kvsieve/core/config.hpp>
#include <kvsieve/core/token_class.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/store/concepts.hpp>

namespace kvsieve {

/// One field of a page: byte offset from the page's start, bytes from one token's row to the next.
struct page_field {
  std::size_t offset = 0;
  std::size_t stride = 0;
  friend constexpr auto operator==(const page_field&, const page_field&) -> bool = default;
};

struct page_layout {
  std::size_t page_bytes = 0;   ///< whole page, padded to `alignment`
  std::int32_t page_size = 0;   ///< tokens per page
  std::int32_t head_dim = 0;
  std::size_t element_bytes = 0; ///< sizeof(value_type) of K and V
  page_field keys;              ///< head_dim elements per token
  page_field values;            ///< head_dim elements per token
  page_field positions;         ///< std::int32_t
  page_field scores;            ///< float
  page_field classes;           ///< token_class (one byte)
  page_field reasons;           ///< keep_reason (one byte)
  static constexpr std::size_t alignment = 64; ///< keeps the next page's K rows vector-aligned
  friend constexpr auto operator==(const page_layout&, const page_layout&) -> bool = default;
};

/// The layout of a page of `g` with K and V stored as `element_bytes`-byte elements.
KVSIEVE_HOST_DEVICE constexpr auto page_layout_for(const store_geometry& g,
                                                   std::size_t element_bytes) -> page_layout {
  static_assert(sizeof(token_class) == 1 && sizeof(keep_reason) == 1);
  const auto ps = static_cast<std::size_t>(g.page_size);
  const auto row = static_cast<std::size_t>(g.head_dim) * element_bytes;
  page_layout l;
  l.page_size = g.page_size;
  l.head_dim = g.head_dim;
  l.element_bytes = element_bytes;
  l.keys = {0, row};
  l.values = {ps * row, row};
  l.positions = {2 * ps * row, sizeof(std::int32_t)};
  l.scores = {l.positions.offset + ps * sizeof(std::int32_t), sizeof(float)};
  l.classes = {l.scores.offset + ps * sizeof(float), 1};
  l.reasons = {l.classes.offset + ps, 1};
  constexpr std::size_t a = page_layout::alignment;
  l.page_bytes = (l.reasons.offset + ps + a - 1) / a * a;
  return l;
}

} // namespace kvsieve
