// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// What every CUDA benchmark shares (house style 3.8): a CUDA-event timer for UseManualTime(),
/// the device-to-device copy bandwidth of the GPU measured in the same run (the figure of merit
/// every bandwidth-bound kernel reports against, as pct_of_copy_bw), rotating input sets so each
/// iteration starts with a cold L2, and the main (cuda_bench_main.cu) that prints the device and
/// skips, exit 0, when there is none. Timed loops contain only device work on one stream.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <kvsieve/core/cuda/runtime.cuh>

namespace kvsieve::bench {

/// Device time between start() and stop() on one stream, from a pair of CUDA events:
///   gpu_timer timer(stream);
///   for (auto _ : state) { timer.start(); work(stream); state.SetIterationTime(timer.stop()); }
/// stop() waits for the end event, so iterations never overlap and host launch overhead that
/// the GPU hides is not counted.
class gpu_timer {
public:
  explicit gpu_timer(cudaStream_t stream = nullptr) : stream_(stream) {
    cuda::check(cudaEventCreate(&begin_), "cudaEventCreate");
    cuda::check(cudaEventCreate(&end_), "cudaEventCreate");
  }
  gpu_timer(const gpu_timer&) = delete;
  auto operator=(const gpu_timer&) -> gpu_timer& = delete;
  ~gpu_timer() {
    (void)cudaEventDestroy(begin_);
    (void)cudaEventDestroy(end_);
  }

  void start() { cuda::check(cudaEventRecord(begin_, stream_), "cudaEventRecord"); }
  /// Seconds since start(); synchronises on the end event.
  auto stop() -> double {
    cuda::check(cudaEventRecord(end_, stream_), "cudaEventRecord");
    cuda::check(cudaEventSynchronize(end_), "cudaEventSynchronize");
    float ms = 0.0F;
    cuda::check(cudaEventElapsedTime(&ms, begin_, end_), "cudaEventElapsedTime");
    return static_cast<double>(ms) * 1e-3;
  }

  /// Median seconds of `repeats` timed calls of fn() after one warm-up call (for ratios and
  /// calibration outside the benchmark loop).
  template <class Fn>
  auto median_seconds(int repeats, Fn&& fn) -> double {
    fn();
    std::vector<double> t;
    t.reserve(static_cast<std::size_t>(repeats));
    for (int r = 0; r < repeats; ++r) {
      start();
      fn();
      t.push_back(stop());
    }
    std::sort(t.begin(), t.end());
    return t.empty() ? 0.0 : t[t.size() / 2];
  }

private:
  cudaStream_t stream_;
  cudaEvent_t begin_ = nullptr;
  cudaEvent_t end_ = nullptr;
};

/// L2 size of the current device in bytes (H200: 50 MB).
[[nodiscard]] inline auto l2_bytes() -> std::size_t {
  int device = 0;
  int bytes = 0;
  cuda::check(cudaGetDevice(&device), "cudaGetDevice");
  cuda::check(cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, device),
              "cudaDeviceGetAttribute(L2)");
  return static_cast<std::size_t>(bytes);
}

/// Device-to-device copy bandwidth of the current GPU in GB/s (1e9 bytes/s), counting bytes read
/// plus bytes written: cudaMemcpyAsync between two 1 GiB buffers (smaller only if memory is
/// short), median of 15 after two warm-ups. Measured once per process, in the same run as the
/// kernels it is compared with (clocks, ECC and driver are those of the run).
[[nodiscard]] inline auto copy_bandwidth_gbps() -> double {
  static const double gbps = [] {
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    cuda::check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    const std::size_t bytes = std::min<std::size_t>(std::size_t{1} << 30U, free_bytes / 4);
    cuda::device_buffer<std::byte> src(bytes);
    cuda::device_buffer<std::byte> dst(bytes);
    cuda::check(cudaMemset(src.data(), 1, bytes), "cudaMemset");
    gpu_timer timer;
    timer.median_seconds(1, [&] {
      cuda::check(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice),
                  "cudaMemcpyAsync");
    });
    const double seconds = timer.median_seconds(15, [&] {
      cuda::check(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice),
                  "cudaMemcpyAsync");
    });
    return 2.0 * static_cast<double>(bytes) / seconds / 1e9;
  }();
  return gbps;
}

/// Records `bytes_per_iteration` bytes of DRAM traffic per iteration (count what the kernel
/// must move, not cache hits): SetBytesProcessed (bytes_per_second), a bytes_per_iter counter
/// and pct_of_copy_bw, the achieved rate as a percentage of copy_bandwidth_gbps(). Call after
/// the timed loop; with UseManualTime() the rate is over the event-timed seconds.
inline void report_bytes(benchmark::State& state, double bytes_per_iteration) {
  const double total = bytes_per_iteration * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(total));
  state.counters["bytes_per_iter"] = benchmark::Counter(bytes_per_iteration);
  state.counters["pct_of_copy_bw"] = benchmark::Counter(
      total * 100.0 / (copy_bandwidth_gbps() * 1e9), benchmark::Counter::kIsRate);
}

/// Records `flops_per_iteration` floating-point operations per iteration as a flop_per_s rate.
inline void report_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["flop_per_s"] = benchmark::Counter(
      flops_per_iteration * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

/// How many copies of an iteration's working set (`bytes_per_set`) make each iteration miss L2:
/// the sets used since a set's last turn hold at least twice the L2 size, so LRU-like eviction
/// has pushed it out. At least 1; capped at 64 sets and at half the free device memory.
[[nodiscard]] inline auto rotation_count(std::size_t bytes_per_set) -> std::size_t {
  if (bytes_per_set == 0) {
    return 1;
  }
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  cuda::check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  const auto wanted = static_cast<std::size_t>(cuda::div_up(
                          static_cast<std::int64_t>(2 * l2_bytes()),
                          static_cast<std::int64_t>(bytes_per_set))) + 1;
  const std::size_t fits = std::max<std::size_t>(1, free_bytes / 2 / bytes_per_set);
  return std::clamp<std::size_t>(wanted, 1, std::min<std::size_t>(64, fits));
}

namespace detail {
template <class T>
__global__ void fill_uniform_kernel(T* data, std::size_t n, std::uint32_t seed, float scale) {
  const auto stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (auto i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    // A 32-bit integer hash (lowbias32) of (index, seed): reproducible, no state, no host work.
    auto x = static_cast<std::uint32_t>(i) ^ (seed * 0x9E3779B9U) ^
             static_cast<std::uint32_t>(i >> 32U);
    x ^= x >> 16U;
    x *= 0x7FEB352DU;
    x ^= x >> 15U;
    x *= 0x846CA68BU;
    x ^= x >> 16U;
    const float u = static_cast<float>(x >> 8U) * (1.0F / 16777216.0F); // [0, 1)
    data[i] = static_cast<T>((2.0F * u - 1.0F) * scale);
  }
}
} // namespace detail

/// Fills n device elements with uniform values in [-scale, scale), on the device (inputs for
/// benchmarks of GB-sized prompts would take seconds to draw and upload from the host).
template <class T>
void fill_uniform(T* data, std::size_t n, std::uint32_t seed, float scale = 1.0F,
                  cudaStream_t stream = nullptr) {
  if (n == 0) {
    return;
  }
  const auto blocks = static_cast<unsigned>(
      std::min<std::int64_t>(cuda::div_up(static_cast<std::int64_t>(n), 256), 65536));
  detail::fill_uniform_kernel<T><<<blocks, 256, 0, stream>>>(data, n, seed, scale);
  cuda::check_launch("fill_uniform_kernel");
}

/// Input sets used in turn, one per iteration, for cold-L2 timing:
///   rotating<prompt> sets(bytes_per_prompt, [&](std::size_t i) { return prompt(..., i); });
///   for (auto _ : state) { auto& p = sets.next(); ... }
template <class Set>
class rotating {
public:
  template <class Make>
  rotating(std::size_t bytes_per_set, Make&& make) {
    const std::size_t n = rotation_count(bytes_per_set);
    sets_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      sets_.push_back(make(i));
    }
  }
  auto next() -> Set& {
    Set& s = sets_[next_];
    next_ = (next_ + 1) % sets_.size();
    return s;
  }
  [[nodiscard]] auto size() const noexcept -> std::size_t { return sets_.size(); }

private:
  std::vector<Set> sets_;
  std::size_t next_ = 0;
};

/// The main of every CUDA benchmark program, called after cuda_bench_main.cu has probed the GPU
/// (a broken one fails there). Without a device it prints "skipped: no CUDA device" and returns
/// 0 (a benchmark run is not a test; nothing failed). With one it prints the device, adds it and
/// the copy bandwidth to the benchmark context, and runs.
inline auto run_main(int argc, char** argv, const char* git_hash, const char* build_type) -> int {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  if (cuda::device_count() == 0) {
    std::fprintf(stderr, "skipped: no CUDA device\n");
    return 0;
  }
  int device = 0;
  cudaDeviceProp prop{};
  cuda::check(cudaGetDevice(&device), "cudaGetDevice");
  cuda::check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  int driver = 0;
  int runtime = 0;
  cuda::check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  cuda::check(cudaRuntimeGetVersion(&runtime), "cudaRuntimeGetVersion");
  const double copy_bw = copy_bandwidth_gbps();
  std::fprintf(stderr, "[cuda bench] %s (sm_%d%d, %d SMs), copy bandwidth %.0f GB/s\n",
               prop.name, prop.major, prop.minor, prop.multiProcessorCount, copy_bw);
  benchmark::AddCustomContext("gpu", prop.name);
  benchmark::AddCustomContext("gpu_sm", fmt::format("{}{}", prop.major, prop.minor));
  benchmark::AddCustomContext("gpu_sms", std::to_string(prop.multiProcessorCount));
  benchmark::AddCustomContext("gpu_memory_gib",
                              fmt::format("{:.1f}", static_cast<double>(prop.totalGlobalMem) /
                                                        static_cast<double>(1U << 30U)));
  benchmark::AddCustomContext("gpu_l2_bytes", std::to_string(l2_bytes()));
  benchmark::AddCustomContext("cuda_driver", std::to_string(driver));
  benchmark::AddCustomContext("cuda_runtime", std::to_string(runtime));
  benchmark::AddCustomContext("copy_bw_gbps", fmt::format("{:.1f}", copy_bw));
  benchmark::AddCustomContext("git_hash", git_hash);
  benchmark::AddCustomContext("build_type", build_type);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

} // namespace kvsieve::bench
