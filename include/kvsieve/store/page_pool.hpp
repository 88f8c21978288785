// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// page_pool<Space>: fixed-size pages handed out by id from chunks of memory in one space. The
/// bookkeeping (free list, counts, capacity) is written once; only chunk allocation is per space.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/space.hpp>

namespace kvsieve {

/// Raw chunk allocation per space; the CUDA specialisation is in store/cuda/paged_store.cuh.
template <memory_space Space>
struct space_allocator {
  static_assert(Space::host_accessible,
                "kvsieve: no allocator for this memory space; include "
                "<kvsieve/store/cuda/paged_store.cuh> and compile the translation unit with nvcc");
};

template <>
struct space_allocator<host_space> {
  static constexpr std::size_t alignment = 64; // a cache line; keeps K/V rows vector-aligned
  static auto allocate(std::size_t bytes) -> std::byte* {
    return static_cast<std::byte*>(::operator new(bytes, std::align_val_t{alignment}));
  }
  static void deallocate(std::byte* p) noexcept {
    ::operator delete(p, std::align_val_t{alignment});
  }
};

template <memory_space Space>
class page_pool {
public:
  /// `page_bytes` per page; chunks of about 2 MiB; at most `max_pages` pages (0: unbounded).
  page_pool(std::size_t page_bytes, std::size_t max_pages)
      : page_bytes_(page_bytes), max_pages_(max_pages),
        pages_per_chunk_(std::max<std::size_t>(1, (std::size_t{2} << 20U) / page_bytes)) {
    if (max_pages_ != 0) {
      pages_per_chunk_ = std::min(pages_per_chunk_, max_pages_);
    }
  }
  page_pool(const page_pool&) = delete;
  auto operator=(const page_pool&) -> page_pool& = delete;
  page_pool(page_pool&&) noexcept = default;
  auto operator=(page_pool&&) noexcept -> page_pool& = default;
  ~page_pool() = default;

  /// True when `n` more pages can be handed out without exceeding the capacity.
  [[nodiscard]] auto can_allocate(std::size_t n) const noexcept -> bool {
    return max_pages_ == 0 || in_use_ + n <= max_pages_;
  }

  /// A free page id. Throws errc::out_of_memory (pool unchanged) when the capacity is reached
  /// or the space's allocator fails.
  auto allocate() -> std::int32_t {
    if (free_.empty()) {
      expects(can_allocate(1), errc::out_of_memory, [&] {
        return fmt::format("page pool exhausted: {} of {} pages in use", in_use_, max_pages_);
      });
      grow();
    }
    const std::int32_t id = free_.back();
    free_.pop_back();
    ++in_use_;
    return id;
  }

  /// Returns page `id` to the pool. Precondition: id was allocated and not yet released.
  void release(std::int32_t id) noexcept {
    free_.push_back(id);
    --in_use_;
  }

  [[nodiscard]] auto data(std::int32_t id) const noexcept -> std::byte* {
    const auto i = static_cast<std::size_t>(id);
    return chunks_[i / pages_per_chunk_].get() + (i % pages_per_chunk_) * page_bytes_;
  }

  [[nodiscard]] auto page_bytes() const noexcept -> std::size_t { return page_bytes_; }
  [[nodiscard]] auto pages_in_use() const noexcept -> std::size_t { return in_use_; }
  [[nodiscard]] auto bytes_reserved() const noexcept -> std::size_t {
    return reserved_pages_ * page_bytes_;
  }

private:
  struct chunk_deleter {
    void operator()(std::byte* p) const noexcept { space_allocator<Space>::deallocate(p); }
  };

  void grow() {
    const std::size_t have = chunks_.size() * pages_per_chunk_;
    std::size_t n = pages_per_chunk_;
    if (max_pages_ != 0) {
      n = std::min(n, max_pages_ - have);
    }
    std::unique_ptr<std::byte[], chunk_deleter> chunk;
    try {
      // Only the last chunk can be short (capacity reached), so id / pages_per_chunk_ still
      // finds every page's chunk.
      chunk.reset(space_allocator<Space>::allocate(n * page_bytes_));
    } catch (const std::bad_alloc&) {
      raise(errc::out_of_memory,
            fmt::format("cannot allocate a chunk of {} bytes for the page pool",
                        n * page_bytes_));
    }
    free_.reserve(free_.size() + n);
    chunks_.push_back(std::move(chunk));
    reserved_pages_ += n;
    // Hand out low ids first so a fresh pool fills its chunks in order.
    for (std::size_t i = n; i-- > 0;) {
      free_.push_back(static_cast<std::int32_t>(have + i));
    }
  }

  std::size_t page_bytes_;
  std::size_t max_pages_;
  std::size_t pages_per_chunk_;
  std::size_t in_use_ = 0;
  std::size_t reserved_pages_ = 0;
  std::vector<std::unique_ptr<std::byte[], chunk_deleter>> chunks_;
  std::vector<std::int32_t> free_;
};

} // namespace kvsieve
