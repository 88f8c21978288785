// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The CUDA runtime as kvsieve uses it: every runtime error becomes a kvsieve::error (out of
/// memory as errc::out_of_memory, the rest as errc::device, naming the call), and device memory
/// is owned by move-only RAII buffers. Include only from translation units compiled by nvcc.

#include <cstddef>
#include <cstdint>
#include <source_location>
#include <span>
#include <string_view>
#include <utility>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/core/config.hpp>
#include <kvsieve/core/error.hpp>

namespace kvsieve::cuda {

/// Throws kvsieve::error unless `status` is cudaSuccess. The sticky error state is cleared for
/// out-of-memory, which leaves the context usable (the store stays usable after a failed grow).
inline void check(cudaError_t status, std::string_view what,
                  std::source_location where = std::source_location::current()) {
  if (status == cudaSuccess) [[likely]] {
    return;
  }
  (void)cudaGetLastError();
  const errc code = status == cudaErrorMemoryAllocation ? errc::out_of_memory : errc::device;
  raise(code, fmt::format("{}: {} ({})", what, cudaGetErrorString(status), cudaGetErrorName(status)),
        where);
}

/// Checks the launch of the kernel just enqueued (configuration errors surface here; faults
/// inside the kernel surface at the next synchronising call).
inline void check_launch(std::string_view kernel,
                         std::source_location where = std::source_location::current()) {
  check(cudaPeekAtLastError(), fmt::format("launch of {}", kernel), where);
}

/// Number of visible CUDA devices; 0 when there is no driver or no device (never throws).
inline auto device_count() noexcept -> int {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

/// Uninitialised device memory for `n` elements of T. Move-only; freed on destruction.
template <class T>
class device_buffer {
public:
  device_buffer() = default;
  explicit device_buffer(std::size_t n) : size_(n) {
    if (n > 0) {
      void* p = nullptr;
      check(cudaMalloc(&p, n * sizeof(T)),
            fmt::format("cudaMalloc of {} bytes", n * sizeof(T)));
      data_ = static_cast<T*>(p);
    }
  }
  device_buffer(const device_buffer&) = delete;
  auto operator=(const device_buffer&) -> device_buffer& = delete;
  device_buffer(device_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  auto operator=(device_buffer&& o) noexcept -> device_buffer& {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~device_buffer() { release(); }

  [[nodiscard]] auto data() const noexcept -> T* { return data_; }
  [[nodiscard]] auto size() const noexcept -> std::size_t { return size_; }
  [[nodiscard]] auto bytes() const noexcept -> std::size_t { return size_ * sizeof(T); }

  /// Grows to at least n elements, discarding the contents (scratch buffers).
  void reserve_discard(std::size_t n) {
    if (n > size_) {
      *this = device_buffer(n);
    }
  }

  /// Synchronous copies (tests, setup, reports: never on the decode path).
  void upload(std::span<const T> src, std::size_t offset = 0) {
    expects(offset + src.size() <= size_, errc::out_of_range, "device_buffer::upload past the end");
    check(cudaMemcpy(data_ + offset, src.data(), src.size_bytes(), cudaMemcpyHostToDevice),
          "cudaMemcpy host to device");
  }
  void download(std::span<T> dst, std::size_t offset = 0) const {
    expects(offset + dst.size() <= size_, errc::out_of_range,
            "device_buffer::download past the end");
    check(cudaMemcpy(dst.data(), data_ + offset, dst.size_bytes(), cudaMemcpyDeviceToHost),
          "cudaMemcpy device to host");
  }
  /// Ordered on `stream`: waits for the work enqueued there before it (which a legacy-stream
  /// cudaMemcpy does not do for a non-blocking stream), then for the copy.
  void download(std::span<T> dst, std::size_t offset, cudaStream_t stream) const {
    expects(offset + dst.size() <= size_, errc::out_of_range,
            "device_buffer::download past the end");
    check(cudaMemcpyAsync(dst.data(), data_ + offset, dst.size_bytes(), cudaMemcpyDeviceToHost,
                          stream),
          "cudaMemcpyAsync device to host");
    check(cudaStreamSynchronize(stream), "device_buffer::download");
  }
  /// Ordered on `stream`. The source may be pageable: CUDA stages it before returning, so the
  /// caller may reuse it at once.
  void upload_async(std::span<const T> src, std::size_t offset, cudaStream_t stream) {
    expects(offset + src.size() <= size_, errc::out_of_range, "device_buffer::upload past the end");
    check(cudaMemcpyAsync(data_ + offset, src.data(), src.size_bytes(), cudaMemcpyHostToDevice,
                          stream),
          "cudaMemcpyAsync host to device");
  }
  void fill_zero(cudaStream_t stream = nullptr) {
    if (size_ > 0) {
      check(cudaMemsetAsync(data_, 0, bytes(), stream), "cudaMemsetAsync");
    }
  }

private:
  void release() noexcept {
    if (data_ != nullptr) {
      (void)cudaFree(data_);
      data_ = nullptr;
    }
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Pinned host memory mapped into the device address space: the device writes status flags
/// that the host reads without a synchronising copy (so decode needs no host sync per step).
template <class T>
class mapped_buffer {
public:
  explicit mapped_buffer(std::size_t n) : size_(n) {
    void* p = nullptr;
    check(cudaHostAlloc(&p, n * sizeof(T), cudaHostAllocMapped), "cudaHostAlloc (mapped)");
    host_ = static_cast<T*>(p);
    void* d = nullptr;
    check(cudaHostGetDevicePointer(&d, p, 0), "cudaHostGetDevicePointer");
    device_ = static_cast<T*>(d);
    for (std::size_t i = 0; i < n; ++i) {
      host_[i] = T{};
    }
  }
  mapped_buffer(const mapped_buffer&) = delete;
  auto operator=(const mapped_buffer&) -> mapped_buffer& = delete;
  mapped_buffer(mapped_buffer&& o) noexcept
      : host_(std::exchange(o.host_, nullptr)), device_(std::exchange(o.device_, nullptr)),
        size_(std::exchange(o.size_, 0)) {}
  auto operator=(mapped_buffer&&) -> mapped_buffer& = delete;
  ~mapped_buffer() {
    if (host_ != nullptr) {
      (void)cudaFreeHost(host_);
    }
  }
  /// The host view: volatile, since the device writes behind the compiler's back.
  [[nodiscard]] auto host() const noexcept -> volatile T* { return host_; }
  [[nodiscard]] auto device() const noexcept -> T* { return device_; }
  [[nodiscard]] auto size() const noexcept -> std::size_t { return size_; }

private:
  T* host_ = nullptr;
  T* device_ = nullptr;
  std::size_t size_ = 0;
};

/// ceil(a / b) for launch geometry.
KVSIEVE_HOST_DEVICE constexpr auto div_up(std::int64_t a, std::int64_t b) noexcept
    -> std::int64_t {
  return (a + b - 1) / b;
}

} // namespace kvsieve::cuda
