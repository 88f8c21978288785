// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve._core's CUDA path (device_cache.hpp): the device adaptive cache for the policies the
// Python module instantiates on the device, behind device_cache. The module's only nvcc
// translation unit, and its slowest to compile: every (ladder, storage element) pair below is a
// set of decode and compaction kernels (docs/python.md, "CUDA", gives the compile time).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <kvsieve/cache/cuda/adaptive_cache.cuh>
#include <kvsieve/core/cuda/numeric.cuh>
#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/python/any_cache.hpp>

#include "device_cache.hpp"

namespace kvsieve::python {
namespace {

// ---- which policies the device build instantiates --------------------------------------------
// Every built-in policy: each distinct (ladder, storage element) pair is a set of decode and
// compaction kernels (pyramidkv and adakv reuse snapkv's ladder: their profilers are host code).
// All eleven cost about a quarter more nvcc time than FastGen's ladder with the budgeted peers
// alone (docs/python.md, "CUDA"); to build fewer, drop ladders here and names below, and the
// dropped names are refused on CUDA before any CUDA call.
template <class Ladder>
inline constexpr bool device_ladder =
    std::is_same_v<Ladder, fastgen_ladder> || std::is_same_v<Ladder, ladder<policies::full>> ||
    std::is_same_v<Ladder, ladder<policies::local>> ||
    std::is_same_v<Ladder, ladder<policies::frequent>> ||
    std::is_same_v<Ladder, ladder<policies::local_frequent>> ||
    std::is_same_v<Ladder, ladder<policies::streaming>> ||
    std::is_same_v<Ladder, ladder<policies::h2o>> ||
    std::is_same_v<Ladder, ladder<policies::tova>> ||
    std::is_same_v<Ladder, ladder<policies::snapkv>>;

constexpr std::string_view device_policies[] = {
    "fastgen", "full", "local",  "frequent",  "local+frequent", "streaming",
    "h2o",     "tova", "snapkv", "pyramidkv", "adakv"};

[[nodiscard]] auto is_device_policy(std::string_view name) -> bool {
  return std::find(std::begin(device_policies), std::end(device_policies), name) !=
         std::end(device_policies);
}

// ---- bfloat16 <-> float32 on the device ------------------------------------------------------

__global__ void widen_kernel(const bfloat16* src, float* dst, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    dst[i] = cuda::to_float(src[i]);
  }
}

__global__ void narrow_kernel(const float* src, bfloat16* dst, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    dst[i] = cuda::from_float<bfloat16>(src[i]);
  }
}

constexpr int convert_threads = 256;

[[nodiscard]] auto convert_blocks(std::size_t n) -> unsigned {
  return static_cast<unsigned>(
      std::clamp<std::int64_t>(cuda::div_up(static_cast<std::int64_t>(n), convert_threads), 1,
                               4096));
}

/// A float32 device view of an input: the array itself, or its bfloat16 elements widened into
/// `scratch` on `stream`.
template <std::size_t Rank>
[[nodiscard]] auto float_input(const device_array& a, cuda::device_buffer<float>& scratch,
                               cudaStream_t stream) -> cuda_view<const float, Rank> {
  std::array<std::size_t, Rank> e{};
  std::copy_n(a.shape.begin(), Rank, e.begin());
  if (!a.bfloat16) {
    return {static_cast<const float*>(a.data), e};
  }
  const std::size_t n = a.size();
  if (n > 0) {
    scratch.reserve_discard(n);
    widen_kernel<<<convert_blocks(n), convert_threads, 0, stream>>>(
        static_cast<const bfloat16*>(a.data), scratch.data(), n);
    cuda::check_launch("widen_kernel (bfloat16 input)");
  }
  return {scratch.data(), e};
}

/// A float32 device view of an output: the array itself, or `scratch`, narrowed by narrow_output.
template <std::size_t Rank>
[[nodiscard]] auto float_output(const device_array& a, cuda::device_buffer<float>& scratch)
    -> cuda_view<float, Rank> {
  std::array<std::size_t, Rank> e{};
  std::copy_n(a.shape.begin(), Rank, e.begin());
  if (!a.bfloat16) {
    return {static_cast<float*>(a.data), e};
  }
  scratch.reserve_discard(a.size());
  return {scratch.data(), e};
}

void narrow_output(const device_array& a, const cuda::device_buffer<float>& scratch,
                   cudaStream_t stream) {
  const std::size_t n = a.size();
  if (!a.bfloat16 || n == 0) {
    return;
  }
  narrow_kernel<<<convert_blocks(n), convert_threads, 0, stream>>>(
      scratch.data(), static_cast<bfloat16*>(a.data), n);
  cuda::check_launch("narrow_kernel (bfloat16 output)");
}

// ---- devices and streams ---------------------------------------------------------------------

/// Makes `device` current for a scope and restores the previous one (torch's device guard).
class device_guard {
public:
  explicit device_guard(int device) {
    cuda::check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) {
      cuda::check(cudaSetDevice(device), fmt::format("cudaSetDevice({})", device));
    }
    restore_ = previous_ != device;
  }
  device_guard(const device_guard&) = delete;
  auto operator=(const device_guard&) -> device_guard& = delete;
  ~device_guard() {
    if (restore_) {
      (void)cudaSetDevice(previous_);
    }
  }

private:
  int previous_ = 0;
  bool restore_ = false;
};

/// Orders a call's work on the cache's stream between the caller's work before and after it,
/// when the caller's stream is another one: the cache's stream waits for an event recorded on
/// the caller's, and at the end (also when the call throws) the caller's waits for one recorded
/// on the cache's. A failure of that last wait is left to the next call that synchronises (a
/// CUDA error is sticky), never thrown from a destructor.
class stream_join {
public:
  stream_join(cudaStream_t caller, cudaStream_t own, cudaEvent_t before, cudaEvent_t after)
      : caller_(caller), own_(own), after_(after) {
    if (caller_ != own_) {
      cuda::check(cudaEventRecord(before, caller_), "cudaEventRecord (caller's stream)");
      cuda::check(cudaStreamWaitEvent(own_, before, 0), "cudaStreamWaitEvent (cache's stream)");
    }
  }
  stream_join(const stream_join&) = delete;
  auto operator=(const stream_join&) -> stream_join& = delete;
  ~stream_join() {
    if (caller_ != own_ && cudaEventRecord(after_, own_) == cudaSuccess) {
      (void)cudaStreamWaitEvent(caller_, after_, 0);
    }
  }

private:
  cudaStream_t caller_;
  cudaStream_t own_;
  cudaEvent_t after_;
};

class event {
public:
  event() { cuda::check(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming), "cudaEventCreate"); }
  event(const event&) = delete;
  auto operator=(const event&) -> event& = delete;
  ~event() { (void)cudaEventDestroy(e_); }
  [[nodiscard]] auto get() const noexcept -> cudaEvent_t { return e_; }

private:
  cudaEvent_t e_ = nullptr;
};

[[nodiscard]] auto as_stream(std::uintptr_t s) -> cudaStream_t {
  return reinterpret_cast<cudaStream_t>(s); // NOLINT(performance-no-int-to-ptr): torch's handle
}

// ---- the model -------------------------------------------------------------------------------

template <class Cache>
class device_model final : public device_cache {
public:
  template <class Ladder, class Profiler>
  device_model(int device, cudaStream_t stream, double threshold, Ladder ladder,
               Profiler profiler, const store_geometry& g, const cache_options& o)
      : device_(device), stream_(stream), threshold_(threshold) {
    const device_guard guard(device_);
    cache_.emplace(std::move(ladder), std::move(profiler), g, o, stream_);
    before_ = std::make_unique<event>();
    after_ = std::make_unique<event>();
  }
  device_model(const device_model&) = delete;
  auto operator=(const device_model&) -> device_model& = delete;
  ~device_model() override {
    // Frees the pool and the events on their own device.
    int previous = 0;
    const bool switch_device = cudaGetDevice(&previous) == cudaSuccess && previous != device_ &&
                               cudaSetDevice(device_) == cudaSuccess;
    (void)cudaStreamSynchronize(stream_);
    cache_.reset();
    before_.reset();
    after_.reset();
    if (switch_device) {
      (void)cudaSetDevice(previous);
    }
  }

  void prefill(std::int32_t seq, std::int32_t layer, const device_array& q, const device_array& k,
               const device_array& v, std::span<const token_class> classes,
               const device_array& out, std::uintptr_t stream) override {
    const device_guard guard(device_);
    const stream_join join(as_stream(stream), stream_, before_->get(), after_->get());
    auto qv = float_input<3>(q, bq_, stream_);
    auto kv = float_input<3>(k, bk_, stream_);
    auto vv = float_input<3>(v, bv_, stream_);
    auto ov = float_output<3>(out, bo_);
    cache_->prefill(seq, layer, qv, kv, vv, classes, ov);
    narrow_output(out, bo_, stream_);
  }

  void decode(std::int32_t seq, std::int32_t layer, const device_array& q, const device_array& k,
              const device_array& v, token_class cls, const device_array& out,
              std::uintptr_t stream) override {
    const device_guard guard(device_);
    const stream_join join(as_stream(stream), stream_, before_->get(), after_->get());
    auto qv = float_input<2>(q, bq_, stream_);
    auto kv = float_input<2>(k, bk_, stream_);
    auto vv = float_input<2>(v, bv_, stream_);
    auto ov = float_output<2>(out, bo_);
    cache_->decode(seq, layer, qv, kv, vv, cls, ov);
    narrow_output(out, bo_, stream_);
  }

  void release(std::int32_t seq) override {
    const device_guard guard(device_);
    cache_->release(seq);
  }
  void synchronize() override {
    const device_guard guard(device_);
    cache_->synchronize();
  }
  void clear_error() override {
    const device_guard guard(device_);
    cache_->clear_error();
  }
  [[nodiscard]] auto length(std::int32_t seq, std::int32_t layer) const -> std::int32_t override {
    return cache_->length(seq, layer);
  }
  [[nodiscard]] auto report() const -> cache_report override {
    const device_guard guard(device_);
    return cache_->report();
  }
  [[nodiscard]] auto profile(std::int32_t seq) const -> head_profile override {
    return profile_of(*cache_, threshold_, seq);
  }
  [[nodiscard]] auto ladder_names() const -> std::vector<std::string> override {
    using ladder_type = typename Cache::ladder_type;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < ladder_type::size; ++i) {
      names.emplace_back(ladder_type::name(i));
    }
    return names;
  }
  [[nodiscard]] auto geometry() const -> const store_geometry& override {
    return cache_->store().geometry();
  }
  [[nodiscard]] auto options() const -> const cache_options& override {
    return cache_->options();
  }
  [[nodiscard]] auto device() const noexcept -> int override { return device_; }

private:
  int device_;
  cudaStream_t stream_;
  double threshold_;
  std::optional<Cache> cache_;
  std::unique_ptr<event> before_, after_;
  // bfloat16 staging in float32 (q, k, v, out), grown on demand, reused on the cache's stream.
  cuda::device_buffer<float> bq_, bk_, bv_, bo_;
};

template <class Ladder, class Profiler>
[[nodiscard]] auto make_model(element e, int device, cudaStream_t stream, double threshold,
                              Ladder ladder, Profiler profiler, const store_geometry& g,
                              const cache_options& o) -> std::unique_ptr<device_cache> {
  if (e == element::bfloat16) {
    return std::make_unique<device_model<cuda::adaptive_cache<Ladder, Profiler, bfloat16>>>(
        device, stream, threshold, std::move(ladder), std::move(profiler), g, o);
  }
  return std::make_unique<device_model<cuda::adaptive_cache<Ladder, Profiler, float>>>(
      device, stream, threshold, std::move(ladder), std::move(profiler), g, o);
}

} // namespace

auto make_device_cache(const policy_settings& s, const store_geometry& g, const cache_options& o,
                       element e, const std::optional<head_profile>& replay, int device,
                       std::uintptr_t stream) -> std::unique_ptr<device_cache> {
  constexpr double no_threshold = std::numeric_limits<double>::quiet_NaN();
  expects(device >= 0, errc::invalid_argument,
          [&] { return fmt::format("CUDA device ordinal must be >= 0, got {}", device); });
  const auto cs = as_stream(stream);
  if (replay) {
    expects(s.name == "fastgen", errc::invalid_argument, [&] {
      return fmt::format("a head profile replays FastGen's ladder: use policy='fastgen', not '{}'",
                         s.name);
    });
    auto l = named_fastgen_ladder(s);
    check_compatible(*replay, l, g);
    return make_model(e, device, cs, no_threshold, std::move(l), replay_profiler(*replay), g, o);
  }
  expects(!is_policy_name(s.name) || is_device_policy(s.name), errc::invalid_argument, [&] {
    return fmt::format("policy '{}' runs on the host cache only; on CUDA the Python module "
                       "builds: {}",
                       s.name, fmt::join(device_policies, ", "));
  });
  return with_named_policy(s, [&](auto l, auto profiler) -> std::unique_ptr<device_cache> {
    if constexpr (device_ladder<decltype(l)>) {
      return make_model(e, device, cs, s.name == "fastgen" ? s.threshold : no_threshold,
                        std::move(l), std::move(profiler), g, o);
    } else {
      raise(errc::invalid_argument,
            fmt::format("policy '{}' runs on the host cache only", s.name));
    }
  });
}

auto device_policy_names() -> std::vector<std::string> {
  return {std::begin(device_policies), std::end(device_policies)};
}

auto device_built() noexcept -> bool { return true; }

auto device_count() noexcept -> int { return cuda::device_count(); }

} // namespace kvsieve::python
