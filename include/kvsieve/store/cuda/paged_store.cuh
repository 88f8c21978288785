// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// paged_store<T, cuda_space>: the host store's bookkeeping with the pages in device memory.
/// Same page layout (keys | values | positions | scores | classes | reasons, 64-byte padded),
/// same dense slots and swap-with-last erase, so bytes_resident() means the same thing on both.
/// Differences, all for the GPU's sake:
///  - the pool is allocated once (geometry.max_pages > 0 pages): no allocation on the decode path;
///  - the page table, sizes and the free list live on the device, so kernels append, evict and
///    reclaim pages without a host round trip (no sync per decode step; CUDA graphs stay
///    possible). A kernel pass either only pops pages or only pushes them, never both, which is
///    what keeps the lock-free free list (an array and a top counter) correct;
///  - the kv_store operations (append, erase, size, meta) work from the host but synchronise:
///    they are for setup and tests. The cache's kernels use store_view directly.
/// Device out-of-memory (pool exhausted, or cudaMalloc failing at construction) throws
/// kvsieve::error errc::out_of_memory and leaves the store unchanged and usable.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/core/cuda/numeric.cuh>
#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/core/error.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/core/space.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/store/concepts.hpp>
#include <kvsieve/store/paged_store.hpp>

namespace kvsieve {
namespace cuda {

/// A keep_reason loaded past L1 (__ldcg has no overload for enums): for metadata another block of
/// the same launch may have written (step_update's tail), L1 not being coherent across SMs.
__device__ __forceinline__ auto load_cg(const keep_reason* r) -> keep_reason {
  return static_cast<keep_reason>(__ldcg(reinterpret_cast<const unsigned char*>(r)));
}

/// What kernels see of a device store: pointers and sizes, passed to kernels by value.
/// A head is a flat index (seq * n_layer + layer) * n_head_kv + head, as paged_store::index.
template <class T>
struct store_view {
  std::byte* pool = nullptr;
  std::size_t page_bytes = 0;
  std::int32_t page_size = 0;
  std::int32_t head_dim = 0;
  std::int32_t* table = nullptr; ///< [n_heads][table_stride] page ids
  std::int32_t table_stride = 0; ///< most pages one head may hold
  std::int32_t* sizes = nullptr; ///< [n_heads] resident tokens
  std::int32_t* free_list = nullptr; ///< [max_pages]; entries [0, *free_top) are free pages
  std::int32_t* free_top = nullptr;
  std::int32_t max_pages = 0;

  __device__ auto page(std::int32_t head, std::int32_t p) const -> std::byte* {
    return page_by_id(table[static_cast<std::size_t>(head) * table_stride + p]);
  }
  __device__ auto kv_bytes() const -> std::size_t {
    return static_cast<std::size_t>(page_size) * head_dim * sizeof(T);
  }
  // A token's fields inside its page (the host's page_layout: K rows, V rows, then positions,
  // scores, classes and reasons of the page's slots): `pg` the page, `off` the slot within it.
  __device__ auto page_by_id(std::int32_t id) const -> std::byte* {
    return pool + static_cast<std::size_t>(id) * page_bytes;
  }
  __device__ auto key_in(std::byte* pg, std::int32_t off) const -> T* {
    return reinterpret_cast<T*>(pg) + static_cast<std::size_t>(off) * head_dim;
  }
  __device__ auto value_in(std::byte* pg, std::int32_t off) const -> T* {
    return reinterpret_cast<T*>(pg + kv_bytes()) + static_cast<std::size_t>(off) * head_dim;
  }
  __device__ auto position_in(std::byte* pg, std::int32_t off) const -> std::int32_t* {
    return reinterpret_cast<std::int32_t*>(pg + 2 * kv_bytes()) + off;
  }
  __device__ auto score_in(std::byte* pg, std::int32_t off) const -> float* {
    return reinterpret_cast<float*>(pg + 2 * kv_bytes() +
                                    4 * static_cast<std::size_t>(page_size)) +
           off;
  }
  __device__ auto cls_in(std::byte* pg, std::int32_t off) const -> token_class* {
    return reinterpret_cast<token_class*>(pg + 2 * kv_bytes() +
                                          8 * static_cast<std::size_t>(page_size)) +
           off;
  }
  __device__ auto reason_in(std::byte* pg, std::int32_t off) const -> keep_reason* {
    return reinterpret_cast<keep_reason*>(pg + 2 * kv_bytes() +
                                          9 * static_cast<std::size_t>(page_size)) +
           off;
  }
  __device__ auto key(std::int32_t head, std::int32_t slot) const -> T* {
    return key_in(page(head, slot / page_size), slot % page_size);
  }
  __device__ auto value(std::int32_t head, std::int32_t slot) const -> T* {
    return value_in(page(head, slot / page_size), slot % page_size);
  }
  __device__ auto position(std::int32_t head, std::int32_t slot) const -> std::int32_t* {
    return position_in(page(head, slot / page_size), slot % page_size);
  }
  __device__ auto score(std::int32_t head, std::int32_t slot) const -> float* {
    return score_in(page(head, slot / page_size), slot % page_size);
  }
  __device__ auto cls(std::int32_t head, std::int32_t slot) const -> token_class* {
    return cls_in(page(head, slot / page_size), slot % page_size);
  }
  __device__ auto reason(std::int32_t head, std::int32_t slot) const -> keep_reason* {
    return reason_in(page(head, slot / page_size), slot % page_size);
  }

  /// Copies token `from` over token `to` of the same head (K, V and metadata); threads
  /// [lane, lanes) of the caller share the rows, which they cover K and V together. The source's
  /// metadata is read past L1 (__ldcg): another block of the same launch may have written it
  /// (step_update's tail), and L1 is not coherent across SMs. The caller orders it against other
  /// accesses.
  __device__ void move_token(std::int32_t head, std::int32_t from, std::int32_t to,
                             std::int32_t lane, std::int32_t lanes) const {
    constexpr int ve = vec_elems<T>;
    std::byte* src = page(head, from / page_size);
    std::byte* dst = page(head, to / page_size);
    const std::int32_t fo = from % page_size;
    const std::int32_t to_off = to % page_size;
    for (std::int32_t c = lane * ve; c < 2 * head_dim; c += lanes * ve) {
      const bool k = c < head_dim;
      const std::int32_t e = k ? c : c - head_dim;
      T* d = (k ? key_in(dst, to_off) : value_in(dst, to_off)) + e;
      const T* x = (k ? key_in(src, fo) : value_in(src, fo)) + e;
      *reinterpret_cast<uint4*>(d) = *reinterpret_cast<const uint4*>(x);
    }
    if (lane == 0) {
      *position_in(dst, to_off) = __ldcg(position_in(src, fo));
      *score_in(dst, to_off) = __ldcg(score_in(src, fo));
      *cls_in(dst, to_off) = *cls_in(src, fo);
      *reason_in(dst, to_off) = load_cg(reason_in(src, fo));
    }
  }

  /// Pages needed to hold n tokens.
  __host__ __device__ auto pages_for(std::int32_t n) const -> std::int32_t {
    return (n + page_size - 1) / page_size;
  }
};

namespace detail {

// Status words in mapped host memory (see paged_store::status).
/// status_contract: a kernel found a size outside the bounds its buffers were sized for (a bug
/// of the caller or of kvsieve, never of the data); it changed nothing and said so.
enum status_bit : int { status_oom = 1, status_overflow = 2, status_contract = 4 };

// kv_store::append from the host: one token, pages popped only.
template <class T>
__global__ void append_one(store_view<T> s, std::int32_t head, const float* key,
                           const float* value, token_meta meta, int* status) {
  const std::int32_t n = s.sizes[head];
  if (n % s.page_size == 0) {
    if (*s.free_top == 0 || s.pages_for(n + 1) > s.table_stride) {
      if (threadIdx.x == 0) {
        *status |= *s.free_top == 0 ? status_oom : status_overflow;
      }
      return;
    }
  }
  __syncthreads(); // every thread has read free_top before thread 0 pops
  if (threadIdx.x == 0 && n % s.page_size == 0) {
    const std::int32_t top = --*s.free_top;
    s.table[static_cast<std::size_t>(head) * s.table_stride + n / s.page_size] = s.free_list[top];
  }
  __syncthreads();
  T* kd = s.key(head, n);
  T* vd = s.value(head, n);
  for (std::int32_t c = static_cast<std::int32_t>(threadIdx.x); c < s.head_dim;
       c += static_cast<std::int32_t>(blockDim.x)) {
    kd[c] = from_float<T>(key[c]);
    vd[c] = from_float<T>(value[c]);
  }
  if (threadIdx.x == 0) {
    *s.position(head, n) = meta.position;
    *s.score(head, n) = meta.score;
    *s.cls(head, n) = meta.cls;
    *s.reason(head, n) = meta.reason;
    s.sizes[head] = n + 1;
  }
}

// kv_store::erase from the host: swap-with-last, the emptied page pushed (pages pushed only).
template <class T>
__global__ void erase_one(store_view<T> s, std::int32_t head, std::int32_t slot) {
  const std::int32_t last = s.sizes[head] - 1;
  if (slot != last) {
    s.move_token(head, last, slot, static_cast<std::int32_t>(threadIdx.x),
                 static_cast<std::int32_t>(blockDim.x));
  }
  __syncthreads(); // every thread has read sizes[head] before thread 0 shrinks it
  if (threadIdx.x == 0) {
    if (last % s.page_size == 0) {
      s.free_list[(*s.free_top)++] =
          s.table[static_cast<std::size_t>(head) * s.table_stride + last / s.page_size];
    }
    s.sizes[head] = last;
  }
}

// Frees every page of heads [first, first + count): one block per head, pages pushed only.
template <class T>
__global__ void clear_heads(store_view<T> s, std::int32_t first) {
  const std::int32_t head = first + static_cast<std::int32_t>(blockIdx.x);
  const std::int32_t pages = s.pages_for(s.sizes[head]);
  __shared__ std::int32_t base;
  if (threadIdx.x == 0) {
    base = atomicAdd(s.free_top, pages);
  }
  __syncthreads();
  for (std::int32_t p = static_cast<std::int32_t>(threadIdx.x); p < pages;
       p += static_cast<std::int32_t>(blockDim.x)) {
    s.free_list[base + p] = s.table[static_cast<std::size_t>(head) * s.table_stride + p];
  }
  if (threadIdx.x == 0) {
    s.sizes[head] = 0;
  }
}

// Prefill compaction: ve elements of a prompt row (In) converted to T, in one 16-byte vector
// when the prompt's rows are 16-byte aligned (`vec`), else per element.
template <class T, class In>
__device__ __forceinline__ void gather_vec(const In* src, T* dst, bool vec) {
  constexpr int ve = vec_elems<T>;
  if constexpr (std::is_same_v<T, In>) {
    if (vec) {
      *reinterpret_cast<uint4*>(dst) = __ldg(reinterpret_cast<const uint4*>(src));
      return;
    }
  }
  float f[ve];
  if constexpr (ve % vec_elems<In> == 0) {
    if (vec) {
#pragma unroll
      for (int o = 0; o < ve; o += vec_elems<In>) {
        load_vec(src + o, f + o);
      }
      store_vec<T>(dst, f);
      return;
    }
  }
#pragma unroll
  for (int e = 0; e < ve; ++e) {
    f[e] = to_float(src[e]);
  }
  store_vec<T>(dst, f);
}

// Prefill compaction in one launch: a warp per kept token gathers its K and V rows from the
// prompt ([L, n_head_kv, D] of In) into its head's slot; the warp of a page's first slot takes
// that page from the free list. Pages are handed out in head order below `top`, the free list's
// top when the host checked that all `total_pages` fit, so no warp waits for another: page p of
// head h is free_list[top - 1 - (pages of heads before h) - p]. The warp's lanes cover K and V
// together (2 * head_dim elements), so none idles for head_dim 128 in bf16.
template <class T, class In>
__global__ void gather_kept(store_view<T> s, std::int32_t first, std::int32_t count,
                            const std::int32_t* offsets, const std::int32_t* rows,
                            const keep_reason* reasons, const float* scores,
                            const token_class* classes, const In* k, const In* v,
                            std::int32_t n_head_kv, std::int32_t top, std::int32_t total_pages,
                            bool vec) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    *s.free_top = top - total_pages;
  }
  const std::int32_t lane = static_cast<std::int32_t>(threadIdx.x % 32U);
  const std::int64_t warp =
      (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const std::int32_t total = offsets[count];
  if (warp >= total) {
    return;
  }
  const auto t = static_cast<std::int32_t>(warp);
  // The head owning token t and the pages of the heads before it: offsets is short (one layer's
  // heads), a linear walk is cheapest.
  std::int32_t h = 0;
  std::int32_t page_base = 0;
  while (offsets[h + 1] <= t) {
    page_base += s.pages_for(offsets[h + 1] - offsets[h]);
    ++h;
  }
  const std::int32_t slot = t - offsets[h];
  const std::int32_t head = first + h;
  const std::int32_t id = s.free_list[top - 1 - page_base - slot / s.page_size];
  const std::int32_t off = slot % s.page_size;
  std::byte* pg = s.page_by_id(id);
  const std::int32_t row = rows[t];
  const std::int32_t d = s.head_dim;
  const std::size_t src =
      (static_cast<std::size_t>(row) * n_head_kv + static_cast<std::size_t>(h)) * d;
  constexpr int ve = vec_elems<T>;
  for (std::int32_t c = lane * ve; c < 2 * d; c += 32 * ve) {
    if (c < d) {
      gather_vec(k + src + c, s.key_in(pg, off) + c, vec);
    } else {
      gather_vec(v + src + (c - d), s.value_in(pg, off) + (c - d), vec);
    }
  }
  if (lane == 0) {
    if (off == 0) {
      s.table[static_cast<std::size_t>(head) * s.table_stride + slot / s.page_size] = id;
    }
    if (slot == 0) {
      s.sizes[head] = offsets[h + 1] - offsets[h];
    }
    *s.position_in(pg, off) = row;
    *s.score_in(pg, off) = scores[t];
    *s.cls_in(pg, off) = classes[row];
    *s.reason_in(pg, off) = reasons[t];
  }
}

} // namespace detail

/// One token copied back to the host (tests, reports).
struct host_token {
  token_meta meta;
  std::vector<float> key;
  std::vector<float> value;
};

} // namespace cuda

template <storage_element T>
class paged_store<T, cuda_space> {
public:
  using value_type = T;
  using memory_space = cuda_space;

  /// geometry.max_pages (> 0) pages are allocated at once; a head holds at most
  /// ceil(geometry.max_context / page_size) pages (max_context 0: max_pages). head_dim *
  /// sizeof(T) must be a multiple of 16 (vector loads). Throws errc::invalid_argument for a bad
  /// geometry and errc::out_of_memory when the device cannot hold the pool.
  explicit paged_store(const store_geometry& g)
      : geometry_(checked(g)),
        page_bytes_(paged_store<T, host_space>::page_bytes_for(g)),
        stride_(g.max_context > 0
                    ? static_cast<std::int32_t>(std::min<std::int64_t>(
                          (std::int64_t{g.max_context} + g.page_size - 1) / g.page_size,
                          static_cast<std::int64_t>(g.max_pages)))
                    : static_cast<std::int32_t>(g.max_pages)),
        n_heads_(static_cast<std::size_t>(g.n_seq) * static_cast<std::size_t>(g.n_layer) *
                 static_cast<std::size_t>(g.n_head_kv)),
        pool_(page_bytes_ * g.max_pages), table_(n_heads_ * static_cast<std::size_t>(stride_)),
        sizes_(n_heads_), free_list_(g.max_pages), free_top_(1), status_(1) {
    sizes_.fill_zero();
    std::vector<std::int32_t> ids(g.max_pages);
    // Popped from the top: page 0 first, so a fresh store fills memory in order.
    std::iota(ids.rbegin(), ids.rend(), 0);
    free_list_.upload(ids);
    const std::int32_t top = static_cast<std::int32_t>(g.max_pages);
    free_top_.upload(std::span<const std::int32_t>(&top, 1));
    cuda::check(cudaDeviceSynchronize(), "paged_store<cuda> construction");
  }

  [[nodiscard]] auto geometry() const noexcept -> const store_geometry& { return geometry_; }
  [[nodiscard]] auto view() const noexcept -> cuda::store_view<T> {
    return {pool_.data(),  page_bytes_,       geometry_.page_size, geometry_.head_dim,
            table_.data(), stride_,           sizes_.data(),       free_list_.data(),
            free_top_.data(), static_cast<std::int32_t>(geometry_.max_pages)};
  }
  /// Flat head index, as on the host. Throws errc::out_of_range.
  [[nodiscard]] auto index(head_id h) const -> std::size_t {
    check_index(h.seq, geometry_.n_seq, "sequence");
    check_index(h.layer, geometry_.n_layer, "layer");
    check_index(h.head, geometry_.n_head_kv, "KV head");
    return (static_cast<std::size_t>(h.seq) * static_cast<std::size_t>(geometry_.n_layer) +
            static_cast<std::size_t>(h.layer)) *
               static_cast<std::size_t>(geometry_.n_head_kv) +
           static_cast<std::size_t>(h.head);
  }
  [[nodiscard]] auto n_heads() const noexcept -> std::size_t { return n_heads_; }
  [[nodiscard]] auto max_pages_per_head() const noexcept -> std::int32_t { return stride_; }
  [[nodiscard]] auto page_bytes() const noexcept -> std::size_t { return page_bytes_; }
  /// The host store's page layout (store/page_layout.hpp). Unlike the host pool, the device pool
  /// is one allocation: page id lives at view().pool + id * page_bytes, and view().table holds
  /// each head's page ids (its block table, max_pages_per_head() entries per head).
  [[nodiscard]] auto layout() const noexcept -> page_layout {
    return page_layout_for(geometry_, sizeof(T));
  }
  [[nodiscard]] auto kv_bytes_per_token() const noexcept -> std::size_t {
    return 2 * static_cast<std::size_t>(geometry_.head_dim) * sizeof(T);
  }

  // The accessors below copy from the device after the work enqueued on `stream` (the caller's
  // stream; the default one when omitted) and wait for it.

  /// Resident tokens of a head (synchronises `stream`).
  [[nodiscard]] auto size(head_id h, cudaStream_t stream = nullptr) const -> std::int32_t {
    std::int32_t n = 0;
    sizes_.download(std::span<std::int32_t>(&n, 1), index(h), stream);
    return n;
  }
  /// Every head's size in index order (synchronises `stream`).
  [[nodiscard]] auto sizes(cudaStream_t stream = nullptr) const -> std::vector<std::int32_t> {
    std::vector<std::int32_t> out(n_heads_);
    sizes_.download(out, 0, stream);
    return out;
  }
  /// Pages handed out (synchronises `stream`).
  [[nodiscard]] auto pages_in_use(cudaStream_t stream = nullptr) const -> std::size_t {
    return geometry_.max_pages - static_cast<std::size_t>(free_pages(stream));
  }
  [[nodiscard]] auto free_pages(cudaStream_t stream = nullptr) const -> std::int32_t {
    std::int32_t top = 0;
    free_top_.download(std::span<std::int32_t>(&top, 1), 0, stream);
    return top;
  }
  /// Bytes of the pages in use, metadata included: the host store's measure (synchronises
  /// `stream`).
  [[nodiscard]] auto bytes_resident(cudaStream_t stream = nullptr) const -> std::size_t {
    return pages_in_use(stream) * page_bytes_;
  }

  /// kv_store::append (synchronises; setup and tests). Throws errc::out_of_memory when no page
  /// is free, errc::out_of_range past max_context, errc::shape_mismatch for bad rows.
  auto append(head_id h, std::span<const float> key, std::span<const float> value,
              token_meta meta) -> std::int32_t {
    const auto i = index(h);
    const auto d = static_cast<std::size_t>(geometry_.head_dim);
    expects(key.size() == d && value.size() == d, errc::shape_mismatch, [&] {
      return fmt::format("append: key/value rows have {}/{} values for head_dim {}", key.size(),
                         value.size(), d);
    });
    staging_.reserve_discard(2 * d);
    staging_.upload(key);
    staging_.upload(value, d);
    status_.host()[0] = 0;
    cuda::detail::append_one<T><<<1, 128>>>(view(), static_cast<std::int32_t>(i), staging_.data(),
                                            staging_.data() + d, meta, status_.device());
    cuda::check_launch("append_one");
    cuda::check(cudaDeviceSynchronize(), "paged_store<cuda>::append");
    const int st = status_.host()[0];
    expects((st & cuda::detail::status_oom) == 0, errc::out_of_memory,
            "device page pool exhausted; the store is unchanged");
    expects((st & cuda::detail::status_overflow) == 0, errc::out_of_range,
            "head would exceed the store's max_context; the store is unchanged");
    return size(h) - 1;
  }

  /// kv_store::erase (synchronises): the last token moves into `slot`; returns its old slot, or
  /// -1 when `slot` was last. Throws errc::out_of_range for a slot outside [0, size).
  auto erase(head_id h, std::int32_t slot) -> std::int32_t {
    const std::int32_t n = size(h);
    check_index(slot, n, "slot");
    cuda::detail::erase_one<T><<<1, 128>>>(view(), static_cast<std::int32_t>(index(h)), slot);
    cuda::check_launch("erase_one");
    cuda::check(cudaDeviceSynchronize(), "paged_store<cuda>::erase");
    return slot == n - 1 ? -1 : n - 1;
  }

  /// Frees every page of heads [first, first + count) (flat indices) on `stream`; no sync.
  void clear(std::size_t first, std::size_t count, cudaStream_t stream = nullptr) {
    expects(first + count <= n_heads_, errc::out_of_range, "clear: heads past the store");
    if (count > 0) {
      cuda::detail::clear_heads<T><<<static_cast<unsigned>(count), 128, 0, stream>>>(
          view(), static_cast<std::int32_t>(first));
      cuda::check_launch("clear_heads");
    }
  }
  void clear(head_id h) { clear(index(h), 1); }

  /// Every token of a head, in slot order (synchronises; tests and reports).
  [[nodiscard]] auto tokens(head_id h) const -> std::vector<cuda::host_token> {
    const auto i = index(h);
    const std::int32_t n = size(h);
    const std::int32_t pages = (n + geometry_.page_size - 1) / geometry_.page_size;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(pages));
    if (pages > 0) {
      table_.download(ids, i * static_cast<std::size_t>(stride_));
    }
    std::vector<std::byte> page(page_bytes_);
    std::vector<cuda::host_token> out;
    const auto ps = static_cast<std::size_t>(geometry_.page_size);
    const auto d = static_cast<std::size_t>(geometry_.head_dim);
    for (std::int32_t p = 0; p < pages; ++p) {
      cuda::check(cudaMemcpy(page.data(),
                             pool_.data() + static_cast<std::size_t>(ids[static_cast<std::size_t>(p)]) *
                                                page_bytes_,
                             page_bytes_, cudaMemcpyDeviceToHost),
                  "paged_store<cuda>::tokens");
      const auto* keys = reinterpret_cast<const T*>(page.data());
      const auto* values = keys + ps * d;
      const std::byte* meta = page.data() + 2 * ps * d * sizeof(T);
      const std::int32_t count = std::min(geometry_.page_size, n - p * geometry_.page_size);
      for (std::size_t t = 0; t < static_cast<std::size_t>(count); ++t) {
        cuda::host_token tok;
        std::int32_t pos = 0;
        float score = 0.0F;
        std::memcpy(&pos, meta + 4 * t, 4);
        std::memcpy(&score, meta + 4 * ps + 4 * t, 4);
        tok.meta = {pos, score, static_cast<token_class>(meta[8 * ps + t]),
                    static_cast<keep_reason>(meta[9 * ps + t])};
        for (std::size_t c = 0; c < d; ++c) {
          tok.key.push_back(load_float(keys[t * d + c]));
          tok.value.push_back(load_float(values[t * d + c]));
        }
        out.push_back(std::move(tok));
      }
    }
    return out;
  }

  /// Compaction at prefill: writes the kept prompt tokens of the `count` consecutive heads from
  /// flat index `first` (all empty) into their pages in one pass. offsets [count + 1] (host and
  /// device copies), rows/reasons/scores [offsets[count]] device: kept prompt rows, ascending per
  /// head; classes [L] device; k, v: the prompt's [L, n_head_kv, D] of In. Throws
  /// errc::out_of_memory (checked before anything changes: synchronises once),
  /// errc::out_of_range when a head would exceed max_context, errc::bad_state when a head is
  /// not empty.
  template <class In>
  void assign_prompt(std::size_t first, std::span<const std::int32_t> host_offsets,
                     const std::int32_t* offsets, const std::int32_t* rows,
                     const keep_reason* reasons, const float* scores, const token_class* classes,
                     const In* k, const In* v, cudaStream_t stream = nullptr) {
    // The prompt's rows are [L, n_head_kv, D]: the heads written are one layer's, from its KV
    // head 0, so that local head h reads column h of the prompt.
    const auto hkv = static_cast<std::size_t>(geometry_.n_head_kv);
    expects(!host_offsets.empty() && host_offsets.size() - 1 <= hkv && first % hkv == 0,
            errc::invalid_argument,
            "assign_prompt: offsets must cover 1 to n_head_kv heads of one layer, from KV head 0");
    const auto count = host_offsets.size() - 1;
    expects(first + count <= n_heads_, errc::out_of_range, "assign_prompt: heads past the store");
    std::int64_t pages = 0;
    for (std::size_t h = 0; h < count; ++h) {
      const std::int32_t n = host_offsets[h + 1] - host_offsets[h];
      const std::int32_t p = (n + geometry_.page_size - 1) / geometry_.page_size;
      expects(p <= stride_, errc::out_of_range, [&] {
        return fmt::format("assign_prompt: {} tokens exceed the store's max_context", n);
      });
      pages += p;
    }
    std::vector<std::int32_t> current(count);
    sizes_.download(current, first, stream);
    expects(std::all_of(current.begin(), current.end(), [](std::int32_t n) { return n == 0; }),
            errc::bad_state, "assign_prompt: the heads must be empty (release them first)");
    const std::int32_t free = free_pages(stream);
    expects(pages <= free, errc::out_of_memory, [&] {
      return fmt::format("device page pool has {} free pages, the prompt needs {}; the store is "
                         "unchanged",
                         free, pages);
    });
    const auto f = static_cast<std::int32_t>(first);
    const auto c = static_cast<std::int32_t>(count);
    const std::int64_t total = host_offsets[count];
    if (total > 0) {
      constexpr std::int64_t warps_per_block = 8;
      const auto blocks = static_cast<unsigned>(cuda::div_up(total, warps_per_block));
      const bool vec = static_cast<std::size_t>(geometry_.head_dim) * sizeof(In) % 16 == 0 &&
                       reinterpret_cast<std::uintptr_t>(k) % 16 == 0 &&
                       reinterpret_cast<std::uintptr_t>(v) % 16 == 0;
      cuda::detail::gather_kept<T, In><<<blocks, 32 * warps_per_block, 0, stream>>>(
          view(), f, c, offsets, rows, reasons, scores, classes, k, v, geometry_.n_head_kv, free,
          static_cast<std::int32_t>(pages), vec);
      cuda::check_launch("gather_kept");
    }
  }

private:
  static auto checked(const store_geometry& g) -> store_geometry {
    expects(g.n_seq > 0 && g.n_layer > 0 && g.n_head_kv > 0 && g.head_dim > 0 &&
                g.page_size > 0,
            errc::invalid_argument, "paged_store<cuda>: every geometry count must be > 0");
    expects(g.max_pages > 0 && g.max_pages < static_cast<std::size_t>(INT32_MAX),
            errc::invalid_argument,
            "paged_store<cuda>: geometry.max_pages must be in [1, 2^31): the device pool is "
            "allocated once");
    expects(g.max_context >= 0, errc::invalid_argument, "geometry.max_context must be >= 0");
    expects(static_cast<std::size_t>(g.head_dim) * sizeof(T) % 16 == 0, errc::invalid_argument,
            [&] {
              return fmt::format("paged_store<cuda>: head_dim * sizeof(T) = {} bytes is not a "
                                 "multiple of 16 (vector loads)",
                                 static_cast<std::size_t>(g.head_dim) * sizeof(T));
            });
    return g;
  }
  static void check_index(std::int32_t i, std::int32_t n, const char* what) {
    expects(i >= 0 && i < n, errc::out_of_range,
            [&] { return fmt::format("{} index {} outside [0, {})", what, i, n); });
  }

  store_geometry geometry_;
  std::size_t page_bytes_;
  std::int32_t stride_;
  std::size_t n_heads_;
  cuda::device_buffer<std::byte> pool_;
  cuda::device_buffer<std::int32_t> table_;
  cuda::device_buffer<std::int32_t> sizes_;
  cuda::device_buffer<std::int32_t> free_list_;
  cuda::device_buffer<std::int32_t> free_top_;
  cuda::mapped_buffer<int> status_;
  cuda::device_buffer<float> staging_;
};

// A kv_store but not a host_kv_store: its pages and metadata are in device memory, and its cache
// (cache/cuda/adaptive_cache.cuh) reaches them through store_view in kernels.
static_assert(kv_store<paged_store<float, cuda_space>>);
static_assert(!host_kv_store<paged_store<float, cuda_space>>);

} // namespace kvsieve
