// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// testing::vector_store<T, Views>: a host_kv_store written from store/concepts.hpp alone, to show
/// that adaptive_cache and attend_paged need nothing of paged_store beyond the concept. Nothing
/// is shared with paged_store: no pool, no page ids, no fixed page bytes. Each head keeps every
/// field in its own std::vector (structure of arrays), its capacity growing and shrinking by
/// geometry.page_size tokens (the store's unit of allocation, which page_bytes() reports); heads
/// are numbered KV head first (index() is a different bijection from paged_store's).
///   Views::page_size   page(h, p) is the window [p * page_size, ...) of the head's arrays;
///   Views::whole_head  the whole head is one page (page_count is 0 or 1).
/// max_pages (> 0) caps the tokens of capacity at max_pages * page_size; past it append throws
/// errc::out_of_memory. Growing or shrinking copies the head's arrays (at most once per page_size
/// appends or erases: this store is for tests, not speed).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/core/space.hpp>
#include <kvsieve/store/concepts.hpp>

namespace kvsieve::testing {

enum class views { page_size, whole_head };

template <storage_element T, views Views = views::page_size>
class vector_store {
public:
  using value_type = T;
  using memory_space = host_space;

  explicit vector_store(const store_geometry& g) : g_(checked(g)), heads_(n_heads(g)) {}

  [[nodiscard]] auto geometry() const noexcept -> const store_geometry& { return g_; }

  [[nodiscard]] auto index(head_id h) const -> std::size_t {
    check(h.seq, g_.n_seq, "sequence");
    check(h.layer, g_.n_layer, "layer");
    check(h.head, g_.n_head_kv, "KV head");
    return (static_cast<std::size_t>(h.head) * static_cast<std::size_t>(g_.n_layer) +
            static_cast<std::size_t>(h.layer)) *
               static_cast<std::size_t>(g_.n_seq) +
           static_cast<std::size_t>(h.seq);
  }

  [[nodiscard]] auto size(head_id h) const -> std::int32_t { return heads_[index(h)].size; }

  [[nodiscard]] auto page_count(head_id h) const -> std::int32_t {
    const std::int32_t n = size(h);
    if constexpr (Views == views::whole_head) {
      return n > 0 ? 1 : 0;
    } else {
      return (n + g_.page_size - 1) / g_.page_size;
    }
  }

  [[nodiscard]] auto page(head_id h, std::int32_t p) -> page_view<T> {
    return view_of<T>(heads_[index(h)], p);
  }
  [[nodiscard]] auto page(head_id h, std::int32_t p) const -> page_view<const T> {
    return view_of<const T>(heads_[index(h)], p);
  }

  [[nodiscard]] auto meta(head_id h, std::int32_t slot) const -> token_meta {
    const auto& e = heads_[index(h)];
    check(slot, e.size, "slot");
    const auto s = static_cast<std::size_t>(slot);
    return {e.positions[s], e.scores[s], e.classes[s], e.reasons[s]};
  }
  void set_reason(head_id h, std::int32_t slot, keep_reason r) {
    auto& e = heads_[index(h)];
    check(slot, e.size, "slot");
    e.reasons[static_cast<std::size_t>(slot)] = r;
  }

  auto append(head_id h, std::span<const float> key, std::span<const float> value,
              token_meta m) -> std::int32_t {
    auto& e = heads_[index(h)];
    expects(key.size() == dim() && value.size() == dim(), errc::shape_mismatch,
            "key/value rows do not have head_dim elements");
    if (e.size == e.capacity) {
      expects(can_allocate(1), errc::out_of_memory, [&] {
        return fmt::format("vector_store: {} tokens of capacity reserved, cap {}", reserved_,
                           cap_tokens());
      });
      resize(e, e.capacity + g_.page_size); // strong guarantee: e changes only on success
    }
    const auto s = static_cast<std::size_t>(e.size);
    for (std::size_t c = 0; c < dim(); ++c) {
      e.keys[s * dim() + c] = store_as<T>(key[c]);
      e.values[s * dim() + c] = store_as<T>(value[c]);
    }
    e.positions[s] = m.position;
    e.scores[s] = m.score;
    e.classes[s] = m.cls;
    e.reasons[s] = m.reason;
    return e.size++;
  }

  auto erase(head_id h, std::int32_t slot) -> std::int32_t {
    auto& e = heads_[index(h)];
    check(slot, e.size, "slot");
    const std::int32_t last = e.size - 1;
    const auto to = static_cast<std::size_t>(slot);
    const auto from = static_cast<std::size_t>(last);
    if (slot != last) {
      std::copy_n(e.keys.begin() + static_cast<std::ptrdiff_t>(from * dim()), dim(),
                  e.keys.begin() + static_cast<std::ptrdiff_t>(to * dim()));
      std::copy_n(e.values.begin() + static_cast<std::ptrdiff_t>(from * dim()), dim(),
                  e.values.begin() + static_cast<std::ptrdiff_t>(to * dim()));
      e.positions[to] = e.positions[from];
      e.scores[to] = e.scores[from];
      e.classes[to] = e.classes[from];
      e.reasons[to] = e.reasons[from];
    }
    e.size = last;
    if (e.size == e.capacity - g_.page_size) {
      try {
        resize(e, e.size);
      } catch (const std::bad_alloc&) { // keep the larger arrays: still counted, still honest
      }
    }
    return slot == last ? -1 : last;
  }

  void clear(head_id h) {
    auto& e = heads_[index(h)];
    reserved_ -= static_cast<std::size_t>(e.capacity);
    e = head{};
  }

  [[nodiscard]] auto pages_to_append(head_id h) const -> std::size_t {
    const auto& e = heads_[index(h)];
    return e.size == e.capacity ? 1 : 0;
  }
  [[nodiscard]] auto can_allocate(std::size_t units) const noexcept -> bool {
    return g_.max_pages == 0 ||
           reserved_ + units * static_cast<std::size_t>(g_.page_size) <= cap_tokens();
  }

  /// Bytes of the arrays' capacity: every field of every reserved token, nothing padded.
  [[nodiscard]] auto bytes_resident() const noexcept -> std::size_t {
    return reserved_ * token_bytes();
  }
  [[nodiscard]] auto page_bytes() const noexcept -> std::size_t {
    return static_cast<std::size_t>(g_.page_size) * token_bytes();
  }
  [[nodiscard]] auto kv_bytes_per_token() const noexcept -> std::size_t {
    return 2 * dim() * sizeof(T);
  }

private:
  struct head {
    std::vector<T> keys, values;          // [capacity, head_dim]
    std::vector<std::int32_t> positions;  // [capacity]
    std::vector<float> scores;            // [capacity]
    std::vector<token_class> classes;     // [capacity]
    std::vector<keep_reason> reasons;     // [capacity]
    std::int32_t size = 0;
    std::int32_t capacity = 0;
  };

  static auto n_heads(const store_geometry& g) -> std::size_t {
    return static_cast<std::size_t>(g.n_seq) * static_cast<std::size_t>(g.n_layer) *
           static_cast<std::size_t>(g.n_head_kv);
  }
  static auto checked(const store_geometry& g) -> const store_geometry& {
    expects(g.n_seq > 0 && g.n_layer > 0 && g.n_head_kv > 0 && g.head_dim > 0 && g.page_size > 0,
            errc::invalid_argument, "vector_store: every geometry count must be > 0");
    return g;
  }
  static void check(std::int32_t i, std::int32_t n, const char* what) {
    expects(i >= 0 && i < n, errc::out_of_range,
            [&] { return fmt::format("{} index {} outside [0, {})", what, i, n); });
  }

  [[nodiscard]] auto dim() const noexcept -> std::size_t {
    return static_cast<std::size_t>(g_.head_dim);
  }
  [[nodiscard]] auto token_bytes() const noexcept -> std::size_t {
    return 2 * dim() * sizeof(T) + sizeof(std::int32_t) + sizeof(float) + sizeof(token_class) +
           sizeof(keep_reason);
  }
  [[nodiscard]] auto cap_tokens() const noexcept -> std::size_t {
    return g_.max_pages * static_cast<std::size_t>(g_.page_size);
  }

  // New arrays of exactly `capacity` tokens (the first `size` copied), swapped in at the end.
  void resize(head& e, std::int32_t capacity) {
    const auto c = static_cast<std::size_t>(capacity);
    const auto n = static_cast<std::size_t>(e.size);
    head next;
    next.keys.assign(c * dim(), T{});
    next.values.assign(c * dim(), T{});
    next.positions.assign(c, 0);
    next.scores.assign(c, 0.0F);
    next.classes.assign(c, token_class::none);
    next.reasons.assign(c, keep_reason::evicted);
    std::copy_n(e.keys.begin(), n * dim(), next.keys.begin());
    std::copy_n(e.values.begin(), n * dim(), next.values.begin());
    std::copy_n(e.positions.begin(), n, next.positions.begin());
    std::copy_n(e.scores.begin(), n, next.scores.begin());
    std::copy_n(e.classes.begin(), n, next.classes.begin());
    std::copy_n(e.reasons.begin(), n, next.reasons.begin());
    next.size = e.size;
    next.capacity = capacity;
    reserved_ = reserved_ - static_cast<std::size_t>(e.capacity) + c;
    e = std::move(next);
  }

  template <class U, class Head>
  [[nodiscard]] auto view_of(Head& e, std::int32_t p) const -> page_view<U> {
    std::int32_t first = 0;
    std::int32_t count = e.size;
    if constexpr (Views == views::page_size) {
      first = p * g_.page_size;
      count = std::min(g_.page_size, e.size - first);
    }
    const auto f = static_cast<std::size_t>(first);
    return {e.keys.data() + f * dim(), e.values.data() + f * dim(), e.positions.data() + f,
            e.scores.data() + f,       e.classes.data() + f,       e.reasons.data() + f,
            count};
  }

  store_geometry g_;
  std::vector<head> heads_;
  std::size_t reserved_ = 0; // tokens of capacity over all heads
};

static_assert(host_kv_store<vector_store<float>>);
static_assert(host_kv_store<vector_store<bfloat16, views::whole_head>>);

} // namespace kvsieve::testing
