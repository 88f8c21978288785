// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// paged_store<T, Space>: the host_kv_store of kvsieve. Every (sequence, layer, KV head) owns a
/// list of fixed-size pages from one pool; a head's tokens occupy the dense slots [0, size) of its
/// pages. Erasing a token moves the head's last token into its slot, so a head never holds more
/// than one partial page and an emptied page returns to the pool at once: bytes_resident() is
/// what is really in use. A page's bytes are laid out as page_layout says (store/page_layout.hpp).
/// Beyond the concept, for block-table kernels: page_ids(head), page_address(id), layout().

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/core/space.hpp>
#include <kvsieve/store/concepts.hpp>
#include <kvsieve/store/page_layout.hpp>
#include <kvsieve/store/page_pool.hpp>

namespace kvsieve {

template <storage_element T, memory_space Space = host_space>
class paged_store {
  static_assert(Space::host_accessible,
                "kvsieve: paged_store for a device space is in <kvsieve/store/cuda/paged_store.cuh>;"
                " include it and compile the translation unit with nvcc");

public:
  using value_type = T;
  using memory_space = Space;

  /// Throws errc::invalid_argument when a geometry count is not positive.
  explicit paged_store(const store_geometry& g)
      : geometry_(checked(g)), layout_(page_layout_for(g, sizeof(T))),
        pool_(layout_.page_bytes, g.max_pages),
        heads_(static_cast<std::size_t>(g.n_seq) * static_cast<std::size_t>(g.n_layer) *
               static_cast<std::size_t>(g.n_head_kv)) {}

  [[nodiscard]] auto geometry() const noexcept -> const store_geometry& { return geometry_; }

  /// Flat index of a head. Throws errc::out_of_range naming the offending index.
  [[nodiscard]] auto index(head_id h) const -> std::size_t {
    check_index(h.seq, geometry_.n_seq, "sequence");
    check_index(h.layer, geometry_.n_layer, "layer");
    check_index(h.head, geometry_.n_head_kv, "KV head");
    return (static_cast<std::size_t>(h.seq) * static_cast<std::size_t>(geometry_.n_layer) +
            static_cast<std::size_t>(h.layer)) *
               static_cast<std::size_t>(geometry_.n_head_kv) +
           static_cast<std::size_t>(h.head);
  }

  [[nodiscard]] auto size(head_id h) const -> std::int32_t { return heads_[index(h)].size; }
  [[nodiscard]] auto page_count(head_id h) const -> std::int32_t {
    return static_cast<std::int32_t>(heads_[index(h)].pages.size());
  }

  /// Page p of head h. Precondition: p < page_count(h).
  [[nodiscard]] auto page(head_id h, std::int32_t p) -> page_view<T> {
    return page_at(heads_[index(h)], p);
  }
  [[nodiscard]] auto page(head_id h, std::int32_t p) const -> page_view<const T> {
    const auto v = page_at(heads_[index(h)], p);
    return {v.keys, v.values, v.positions, v.scores, v.classes, v.reasons, v.count};
  }

  /// Block table of head h: its page ids in slot order (slot s is on page_ids[s / page_size],
  /// row s % page_size). The span is valid until the head's next append, erase or clear.
  [[nodiscard]] auto page_ids(head_id h) const -> std::span<const std::int32_t> {
    return heads_[index(h)].pages;
  }
  /// Host address of page `id` (an id from page_ids). Pages live in chunks of about 2 MiB
  /// (page_pool), so there is no single base + id * page_bytes: a kernel is handed one address
  /// per page. Precondition: id is in use.
  [[nodiscard]] auto page_address(std::int32_t id) -> std::byte* { return pool_.data(id); }
  [[nodiscard]] auto page_address(std::int32_t id) const -> const std::byte* {
    return pool_.data(id);
  }
  /// Byte offsets and per-token strides of every field inside a page.
  [[nodiscard]] auto layout() const noexcept -> const page_layout& { return layout_; }

  /// Metadata of one resident token. Throws errc::out_of_range for a slot outside [0, size).
  [[nodiscard]] auto meta(head_id h, std::int32_t slot) const -> token_meta {
    const auto& e = heads_[index(h)];
    check_index(slot, e.size, "slot");
    const auto v = page_at(e, slot / geometry_.page_size);
    const auto o = static_cast<std::size_t>(slot % geometry_.page_size);
    return {v.positions[o], v.scores[o], v.classes[o], v.reasons[o]};
  }
  void set_reason(head_id h, std::int32_t slot, keep_reason r) {
    auto& e = heads_[index(h)];
    check_index(slot, e.size, "slot");
    page_at(e, slot / geometry_.page_size)
        .reasons[static_cast<std::size_t>(slot % geometry_.page_size)] = r;
  }

  /// Appends one token (key and value are float rows of head_dim, converted to T).
  /// Returns its slot. Throws errc::shape_mismatch for a wrong row length and
  /// errc::out_of_memory when the pool is exhausted; on a throw the store is unchanged.
  auto append(head_id h, std::span<const float> key, std::span<const float> value,
              token_meta meta) -> std::int32_t {
    auto& e = heads_[index(h)];
    expects(key.size() == dim() && value.size() == dim(), errc::shape_mismatch, [&] {
      return fmt::format("key/value rows have {}/{} elements, head_dim is {}", key.size(),
                         value.size(), dim());
    });
    if (e.size == static_cast<std::int32_t>(e.pages.size()) * geometry_.page_size) {
      e.pages.reserve(e.pages.size() + 1); // may throw before the pool changes
      e.pages.push_back(pool_.allocate());
    }
    const std::int32_t slot = e.size++;
    auto v = page_at(e, slot / geometry_.page_size);
    const auto o = static_cast<std::size_t>(slot % geometry_.page_size);
    for (std::size_t d = 0; d < dim(); ++d) {
      v.keys[o * dim() + d] = store_as<T>(key[d]);
      v.values[o * dim() + d] = store_as<T>(value[d]);
    }
    v.positions[o] = meta.position;
    v.scores[o] = meta.score;
    v.classes[o] = meta.cls;
    v.reasons[o] = meta.reason;
    return slot;
  }

  /// Removes the token in `slot`: the head's last token moves into it and an emptied page goes
  /// back to the pool. Returns the moved token's old slot, or -1 when `slot` was the last.
  /// Throws errc::out_of_range for a slot outside [0, size).
  auto erase(head_id h, std::int32_t slot) -> std::int32_t {
    auto& e = heads_[index(h)];
    check_index(slot, e.size, "slot");
    const std::int32_t last = e.size - 1;
    std::int32_t moved = -1;
    if (slot != last) {
      copy_token(e, last, slot);
      moved = last;
    }
    --e.size;
    if (e.size == (static_cast<std::int32_t>(e.pages.size()) - 1) * geometry_.page_size) {
      pool_.release(e.pages.back());
      e.pages.pop_back();
    }
    return moved;
  }

  /// Releases every page of head h.
  void clear(head_id h) {
    auto& e = heads_[index(h)];
    for (auto p : e.pages) {
      pool_.release(p);
    }
    e.pages.clear();
    e.size = 0;
  }

  /// True when `pages` more pages can be allocated (to check a whole step before changing it).
  [[nodiscard]] auto can_allocate(std::size_t pages) const noexcept -> bool {
    return pool_.can_allocate(pages);
  }
  /// Pages head h needs to append one more token (0 or 1).
  [[nodiscard]] auto pages_to_append(head_id h) const -> std::size_t {
    const auto& e = heads_[index(h)];
    return e.size == static_cast<std::int32_t>(e.pages.size()) * geometry_.page_size ? 1 : 0;
  }

  [[nodiscard]] auto bytes_resident() const noexcept -> std::size_t {
    return pool_.pages_in_use() * pool_.page_bytes();
  }
  [[nodiscard]] auto bytes_reserved() const noexcept -> std::size_t {
    return pool_.bytes_reserved();
  }
  [[nodiscard]] auto pages_in_use() const noexcept -> std::size_t { return pool_.pages_in_use(); }
  [[nodiscard]] auto page_bytes() const noexcept -> std::size_t { return pool_.page_bytes(); }
  /// Bytes of K and V alone for one token (no metadata, no padding).
  [[nodiscard]] auto kv_bytes_per_token() const noexcept -> std::size_t {
    return 2 * dim() * sizeof(T);
  }

  /// Bytes of one page of geometry g (the device store shares the layout).
  [[nodiscard]] static auto page_bytes_for(const store_geometry& g) -> std::size_t {
    return page_layout_for(g, sizeof(T)).page_bytes;
  }

private:
  struct head_entry {
    std::vector<std::int32_t> pages;
    std::int32_t size = 0;
  };

  [[nodiscard]] auto dim() const noexcept -> std::size_t {
    return static_cast<std::size_t>(geometry_.head_dim);
  }

  static auto checked(const store_geometry& g) -> const store_geometry& {
    auto positive = [](std::int32_t v, const char* what) {
      expects(v > 0, errc::invalid_argument,
              [&] { return fmt::format("store geometry: {} must be > 0, got {}", what, v); });
    };
    positive(g.n_seq, "n_seq");
    positive(g.n_layer, "n_layer");
    positive(g.n_head_kv, "n_head_kv");
    positive(g.head_dim, "head_dim");
    positive(g.page_size, "page_size");
    expects(g.max_context >= 0, errc::invalid_argument, [&] {
      return fmt::format("store geometry: max_context must be >= 0 (0: no limit), got {}",
                         g.max_context);
    });
    return g;
  }

  static void check_index(std::int32_t i, std::int32_t n, const char* what) {
    expects(i >= 0 && i < n, errc::out_of_range,
            [&] { return fmt::format("{} index {} outside [0, {})", what, i, n); });
  }

  [[nodiscard]] auto page_at(const head_entry& e, std::int32_t p) const -> page_view<T> {
    std::byte* base = pool_.data(e.pages[static_cast<std::size_t>(p)]);
    const std::int32_t count = std::min(geometry_.page_size, e.size - p * geometry_.page_size);
    return {reinterpret_cast<T*>(base + layout_.keys.offset),
            reinterpret_cast<T*>(base + layout_.values.offset),
            reinterpret_cast<std::int32_t*>(base + layout_.positions.offset),
            reinterpret_cast<float*>(base + layout_.scores.offset),
            reinterpret_cast<token_class*>(base + layout_.classes.offset),
            reinterpret_cast<keep_reason*>(base + layout_.reasons.offset),
            count};
  }

  void copy_token(head_entry& e, std::int32_t from, std::int32_t to) const {
    const auto src = page_at(e, from / geometry_.page_size);
    const auto dst = page_at(e, to / geometry_.page_size);
    const auto so = static_cast<std::size_t>(from % geometry_.page_size);
    const auto dof = static_cast<std::size_t>(to % geometry_.page_size);
    std::memcpy(dst.keys + dof * dim(), src.keys + so * dim(), dim() * sizeof(T));
    std::memcpy(dst.values + dof * dim(), src.values + so * dim(), dim() * sizeof(T));
    dst.positions[dof] = src.positions[so];
    dst.scores[dof] = src.scores[so];
    dst.classes[dof] = src.classes[so];
    dst.reasons[dof] = src.reasons[so];
  }

  store_geometry geometry_;
  page_layout layout_;
  page_pool<Space> pool_;
  std::vector<head_entry> heads_;
};

static_assert(host_kv_store<paged_store<float>>);
static_assert(host_kv_store<paged_store<bfloat16>>);
static_assert(host_kv_store<paged_store<half>>);

} // namespace kvsieve
