// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The store concepts: ragged per-(sequence, layer, KV head) storage of post-RoPE keys, values
/// and per-token metadata, in llama.cpp's sequence-operation vocabulary.
///   kv_store       what every store offers, host or device (sequence operations, accounting);
///   host_kv_store  kv_store plus the host page access that adaptive_cache and attend_paged use.
/// Two concepts, not one: the device store keeps its pages, sizes and page table in device
/// memory, so a host `page()` or `meta()` would be a copy per call; its cache works through
/// kernels instead (cache/cuda/adaptive_cache.cuh), and it models kv_store only.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include <kvsieve/core/numeric.hpp>
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
  /// Most tokens a (sequence, layer) may see, prompt and generated (0: no limit beyond the pool).
  /// The cache refuses a prefill or decode past it with errc::out_of_range; the device store
  /// sizes each head's page table by it (a head holds at most ceil(max_context / page_size)
  /// pages), so a bound saves device memory.
  std::int32_t max_context = 0;
};

/// The tokens of one page of one head, as arrays in host memory. `count` rows are valid; the
/// pointers stay valid until the head's next append, erase or clear. A page_view<const T> is
/// read-only throughout (metadata included), so a store may hand out views of const arrays.
template <class T>
struct page_view {
  template <class U>
  using field = std::conditional_t<std::is_const_v<T>, const U, U>;
  T* keys;                              // [count, head_dim]
  T* values;                            // [count, head_dim]
  field<std::int32_t>* positions;       // [count]
  field<float>* scores;                 // [count]
  field<token_class>* classes;          // [count]
  field<keep_reason>* reasons;          // [count]
  std::int32_t count;
};

/// A kv_store S (host or device):
///  1. `S::value_type` (key/value element) and `S::memory_space`;
///  2. `s.geometry()`; `s.index(head)`: a bijection of the geometry's heads onto
///     [0, n_seq * n_layer * n_head_kv), so callers keep per-head state in flat arrays; throws
///     errc::out_of_range naming the bad index;
///  3. `s.size(head)`: resident tokens, O(1);
///  4. `s.append(head, key, value, meta) -> slot`: O(head_dim); slots stay dense [0, size), the
///     new token takes slot size; throws errc::out_of_memory and leaves the store unchanged when
///     it cannot grow;
///  5. `s.erase(head, slot) -> moved_from`: O(head_dim), amortised; the last token moves into
///     `slot` (its old slot is returned, -1 if `slot` was last): callers holding slots relink
///     exactly one of them; memory the head no longer needs goes back at once;
///  6. `s.clear(head)`: forgets the head and returns its memory (release, rollback);
///  7. accounting, for the cache's report: `bytes_resident()` (memory the tokens hold now,
///     metadata and the store's granularity included, O(1)), `page_bytes()` (bytes of one unit
///     of allocation, page_size tokens), `kv_bytes_per_token()` (K and V alone).
/// Not required: host access to the data (device stores), thread safety.
template <class S>
concept kv_store = requires(S& s, const S& cs, head_id h, std::span<const float> row,
                            token_meta meta, std::int32_t slot) {
  typename S::value_type;
  requires memory_space<typename S::memory_space>;
  { cs.geometry() } -> std::convertible_to<const store_geometry&>;
  { cs.index(h) } -> std::same_as<std::size_t>;
  { cs.size(h) } -> std::same_as<std::int32_t>;
  { s.append(h, row, row, meta) } -> std::same_as<std::int32_t>;
  { s.erase(h, slot) } -> std::same_as<std::int32_t>;
  s.clear(h);
  { cs.bytes_resident() } -> std::same_as<std::size_t>;
  { cs.page_bytes() } -> std::same_as<std::size_t>;
  { cs.kv_bytes_per_token() } -> std::same_as<std::size_t>;
};

/// Host page access: the pages of a head, in slot order, as arrays.
///  1. `page_count(head)`; `page(head, p)` (mutable: the cache adds scores in place; const: the
///     attention reads K and V) for p in [0, page_count): the pages cover slots [0, size) in
///     order and page p starts at slot p * geometry().page_size, which is how the cache turns
///     (page, row) back into a slot without a second lookup: every page but the last holds
///     exactly page_size tokens, the last the rest (so one page per head also qualifies); no
///     page is empty. O(1).
template <class S>
concept host_pages = requires(S& s, const S& cs, head_id h, std::int32_t p) {
  { cs.page_count(h) } -> std::same_as<std::int32_t>;
  { s.page(h, p) } -> std::same_as<page_view<typename S::value_type>>;
  { cs.page(h, p) } -> std::same_as<page_view<const typename S::value_type>>;
};

/// Host metadata by slot, for the decode step's bookkeeping.
///  1. `meta(head, slot) -> token_meta`: the window and budget code reads one token's position
///     and score without knowing pages; O(1); throws errc::out_of_range outside [0, size);
///  2. `set_reason(head, slot, reason)`: a token changes hands between rule, window and budget.
template <class S>
concept host_metadata = requires(S& s, const S& cs, head_id h, std::int32_t slot,
                                 keep_reason r) {
  { cs.meta(h, slot) } -> std::same_as<token_meta>;
  s.set_reason(h, slot, r);
};

/// Capacity questions asked before a decode step changes anything, so an out-of-memory step
/// leaves every head as it was (appends of several heads cannot be undone one by one cheaply).
///  1. `pages_to_append(head)`: units of allocation one more token of the head needs (0 or 1);
///  2. `can_allocate(n)`: whether n such units can be had now.
template <class S>
concept capacity_checked = requires(const S& cs, head_id h, std::size_t n) {
  { cs.pages_to_append(h) } -> std::same_as<std::size_t>;
  { cs.can_allocate(n) } -> std::same_as<bool>;
};

/// A host_kv_store is a kv_store whose data the host reads and writes in place: exactly what
/// adaptive_cache and attend_paged use. Also: `value_type` is a storage_element (the decode
/// kernels are instantiated for it) and the memory space is host accessible. Const members may be
/// called concurrently on distinct heads (the cache's threaded attention does).
/// Not required: page ids and byte layout (paged_store's extras for block-table kernels).
template <class S>
concept host_kv_store = kv_store<S> && storage_element<typename S::value_type> &&
                        S::memory_space::host_accessible && host_pages<S> &&
                        host_metadata<S> && capacity_checked<S>;

} // namespace kvsieve
