// Host emulation of the CUDA execution model for kvsieve's kernels (force-included before
// everything). One std::thread per CUDA thread; __syncthreads is a std::barrier; warp shuffles
// go through a per-warp exchange with its own barrier; shared and device memory are poisoned
// (0xFF bytes: NaN floats, -1 ints); blocks of a grid run one at a time in a random order.
// Strict checks: a lane waiting at a shuffle while another lane of its warp waits at
// __syncthreads (divergent shuffle: undefined in PTX, a deadlock or garbage on hardware) is
// reported by a watchdog, which dumps every thread's state and aborts.
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <semaphore>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

namespace emu {
enum : int { st_run = 0, st_shfl = 1, st_bar = 2, st_exit = 3 };
struct block_ctx {
  int nthreads = 0;
  std::unique_ptr<std::barrier<>> bar;
  std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
  std::vector<std::uint64_t> xchg;           // [nthreads]
  std::unique_ptr<std::atomic<int>[]> state;  // per thread
  std::unique_ptr<std::atomic<int>[]> nbar;   // __syncthreads calls per thread
  std::mutex mu;
  std::map<int, void*> vars;
  std::vector<std::byte> static_smem;  // arena
  std::size_t static_used = 0;
  std::byte* dyn = nullptr;
  std::size_t dyn_bytes = 0;
  std::atomic<bool> divergent_warning{false};
};
inline thread_local uint3 t_tid, t_bid;
inline thread_local dim3 t_bdim, t_gdim;
inline thread_local block_ctx* cur = nullptr;
inline thread_local std::minstd_rand t_rng;
inline int yield_every = 0; // > 0: yield at random points (shuffles barrier order)
inline void maybe_yield() {
  if (yield_every > 0 && t_rng() % static_cast<unsigned>(yield_every) == 0) std::this_thread::yield();
}
inline int me() { return static_cast<int>(t_tid.x + t_bdim.x * (t_tid.y + t_bdim.y * t_tid.z)); }

inline void syncthreads() {
  maybe_yield();
  const int i = me();
  cur->state[i].store(st_bar);
  cur->nbar[i].fetch_add(1);
  cur->bar->arrive_and_wait();
  cur->state[i].store(st_run);
  maybe_yield();
}
template <class T>
T shfl_xor(unsigned mask, T v, int off, int width = 32) {
  static_assert(sizeof(T) <= 8);
  if (mask != 0xffffffffU || width != 32) { std::fprintf(stderr, "emu: unsupported shuffle mask/width\n"); std::abort(); }
  maybe_yield();
  const int i = me();
  const int w = i / 32, lane = i % 32;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  cur->xchg[static_cast<std::size_t>(i)] = bits;
  cur->state[i].store(st_shfl);
  cur->warp_bar[static_cast<std::size_t>(w)]->arrive_and_wait();
  cur->state[i].store(st_run);
  const int src = w * 32 + (lane ^ off);
  T r;
  std::memcpy(&r, &cur->xchg[static_cast<std::size_t>(src)], sizeof(T));
  cur->warp_bar[static_cast<std::size_t>(w)]->arrive_and_wait();
  return r;
}
template <class T>
T& shared_var(int id) {
  std::lock_guard lk(cur->mu);
  auto it = cur->vars.find(id);
  if (it == cur->vars.end()) {
    constexpr std::size_t al = alignof(T) < 16 ? 16 : alignof(T);
    cur->static_used = (cur->static_used + al - 1) / al * al;
    if (cur->static_used + sizeof(T) > cur->static_smem.size()) { std::fprintf(stderr, "emu: static shared memory over 48 KiB\n"); std::abort(); }
    void* p = cur->static_smem.data() + cur->static_used;
    cur->static_used += sizeof(T);
    it = cur->vars.emplace(id, p).first;
  }
  return *static_cast<T*>(it->second);
}
template <class T>
T* dyn_smem() { return reinterpret_cast<T*>(cur->dyn); }

template <class T, class U>
T atomic_add(T* p, U v) {
  maybe_yield();
  return std::atomic_ref<T>(*p).fetch_add(static_cast<T>(v));
}
template <class T, class U>
T atomic_max(T* p, U v) {
  maybe_yield();
  std::atomic_ref<T> r(*p);
  T old = r.load();
  while (old < static_cast<T>(v) && !r.compare_exchange_weak(old, static_cast<T>(v))) {
  }
  return old;
}
template <class T, class U>
T atomic_or(T* p, U v) {
  maybe_yield();
  return std::atomic_ref<T>(*p).fetch_or(static_cast<T>(v));
}
inline float uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline unsigned float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
template <class T>
T ldg(const T* p) { return *p; }
inline void threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---- runtime bookkeeping
inline std::map<const void*, int>& max_dyn_smem() { static std::map<const void*, int> m; return m; }
inline cudaError_t& last_error() { static cudaError_t e = cudaSuccess; return e; }
inline long blocks_run = 0, launches = 0;
inline std::mt19937& order_rng() { static std::mt19937 r(1); return r; }
inline double watchdog_s = 30.0;


// Persistent workers: CUDA thread t of every block runs on worker t.
struct pool {
  std::vector<std::thread> workers;
  std::vector<std::unique_ptr<std::binary_semaphore>> go;
  std::counting_semaphore<> done{0};
  std::function<void(std::size_t)> job;
  bool stop = false;
  std::atomic<long> gen{0}, finished{0};
  pool() { // no reallocation while workers index go
    workers.reserve(1024);
    go.reserve(1024);
  }
  ~pool() {
    stop = true;
    gen.fetch_add(1, std::memory_order_release);
    for (auto& g : go) g->release();
    for (auto& w : workers) w.join();
  }
  bool run(std::size_t nt, const std::function<void(std::size_t)>& f, double timeout_s) {
    job = f;
    while (workers.size() < nt) {
      const std::size_t t = workers.size();
      go.push_back(std::make_unique<std::binary_semaphore>(0));
      workers.emplace_back([this, t] {
        for (;;) {
          go[t]->acquire();
          (void)gen.load(std::memory_order_acquire); // happens-after the job assignment
          if (stop) return;
          job(t);
          finished.fetch_add(1, std::memory_order_acq_rel);
          done.release();
        }
      });
    }
    gen.fetch_add(1, std::memory_order_release);
    const long target = finished.load() + static_cast<long>(nt);
    for (std::size_t t = 0; t < nt; ++t) go[t]->release();
    for (std::size_t t = 0; t < nt; ++t) {
      if (!done.try_acquire_for(std::chrono::duration<double>(timeout_s))) return false;
    }
    while (finished.load(std::memory_order_acquire) < target) {} // happens-after every job
    return true;
  }
};
inline pool& the_pool() { static pool p; return p; }

// Stream capture (CUDA graphs): launches on the capturing stream are recorded, not run, and
// replayed in order by cudaGraphLaunch; cudaMalloc, cudaFree, cudaMemcpy and synchronisation
// fail while a capture is open (cudaStreamCaptureModeGlobal), as on a GPU.
struct capture_state {
  bool active = false;
  cudaStream_t stream = nullptr;
  std::vector<std::function<void()>> ops;
};
inline capture_state& capture() { static capture_state c; return c; }

struct launch {
  dim3 grid, block;
  std::size_t smem;
  cudaStream_t stream;
  launch(dim3 g, dim3 b, std::size_t s = 0, cudaStream_t st = nullptr) : grid(g), block(b), smem(s), stream(st) {}
  template <class... P, class... A>
  void operator()(void (*k)(P...), A&&... a) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel argument count");
    if (capture().active && stream == capture().stream) {
      launch replay(grid, block, smem, nullptr);
      capture().ops.push_back([replay, k, args = std::tuple<std::decay_t<P>...>(static_cast<std::decay_t<P>>(std::forward<A>(a))...)]() mutable {
        std::apply([&](auto&... x) { replay(k, x...); }, args);
      });
      return;
    }
    const std::size_t nt = static_cast<std::size_t>(block.x) * block.y * block.z;
    int limit = 48 * 1024;
    if (auto it = max_dyn_smem().find(reinterpret_cast<const void*>(k)); it != max_dyn_smem().end()) limit = it->second;
    if (nt == 0 || nt > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 ||
        smem > static_cast<std::size_t>(limit) || smem > 232448) {
      std::fprintf(stderr, "emu: bad launch configuration grid (%u,%u,%u) block %zu smem %zu (limit %d)\n",
                   grid.x, grid.y, grid.z, nt, smem, limit);
      last_error() = cudaErrorInvalidConfiguration;
      return;
    }
    ++launches;
    std::tuple<std::decay_t<P>...> args(static_cast<std::decay_t<P>>(std::forward<A>(a))...);
    std::vector<dim3> order;
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) order.push_back(dim3(x, y, z));
    std::shuffle(order.begin(), order.end(), order_rng());
    std::vector<std::byte> dyn(smem + 128); // the window is 128-byte aligned, as on a GPU
    for (const dim3 b : order) {
      block_ctx ctx;
      ctx.nthreads = static_cast<int>(nt);
      ctx.bar = std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(nt));
      for (std::size_t w = 0; w < (nt + 31) / 32; ++w)
        ctx.warp_bar.push_back(std::make_unique<std::barrier<>>(static_cast<std::ptrdiff_t>(std::min<std::size_t>(32, nt - w * 32))));
      ctx.xchg.assign(nt, ~0ULL);
      ctx.state = std::make_unique<std::atomic<int>[]>(nt);
      ctx.nbar = std::make_unique<std::atomic<int>[]>(nt);
      ctx.static_smem.assign(48 * 1024, std::byte{0xff});
      std::fill(dyn.begin(), dyn.end(), std::byte{0xff});
      ctx.dyn = dyn.data() + (128 - reinterpret_cast<std::uintptr_t>(dyn.data()) % 128) % 128;
      ctx.dyn_bytes = smem;
      auto job = [&, b](std::size_t t) {
        t_bdim = block; t_gdim = grid;
        t_tid = uint3{static_cast<unsigned>(t % block.x), static_cast<unsigned>(t / block.x % block.y), static_cast<unsigned>(t / (block.x * block.y))};
        t_bid = uint3{b.x, b.y, b.z};
        t_rng.seed(static_cast<unsigned>(t * 7919 + b.x * 31 + b.y * 17 + b.z + launches * 1000003));
        cur = &ctx;
        std::apply(k, args); // by value: each thread its own copy of the parameters
        const int i = me();
        ctx.state[i].store(st_exit);
        ctx.warp_bar[static_cast<std::size_t>(i / 32)]->arrive_and_drop();
        ctx.bar->arrive_and_drop();
        cur = nullptr;
      };
      if (!the_pool().run(nt, job, watchdog_s)) {
        std::fprintf(stderr, "emu: block (%u,%u,%u) of a %zu-thread launch hangs; thread states (0 run, 1 shfl, 2 bar, 3 exit):\n", b.x, b.y, b.z, nt);
        for (std::size_t t = 0; t < nt; ++t) std::fprintf(stderr, "%d%s", ctx.state[t].load(), t % 32 == 31 ? "\n" : "");
        std::fprintf(stderr, "\n");
        std::_Exit(3);
      }
      // Divergent __syncthreads: threads that exited before others synchronised.
      int lo = 1 << 30, hi = 0;
      for (std::size_t t = 0; t < nt; ++t) { lo = std::min(lo, ctx.nbar[t].load()); hi = std::max(hi, ctx.nbar[t].load()); }
      if (lo != hi) {
        static int told = 0;
        if (told++ < 5) std::fprintf(stderr, "emu: note: threads of one block called __syncthreads %d..%d times (early exit)\n", lo, hi);
      }
      ++blocks_run;
    }
  }
};
} // namespace emu

// WMMA (nvcuda::wmma; <mma.h> declares nothing outside nvcc). A fragment's element layout is
// unspecified on hardware, so kernels may only load, store, fill, multiply and apply one
// operation to every element; any layout that keeps that contract emulates it. Here A and B
// fragments hold the whole tile in every lane (loads only read), and lane l of the warp owns
// accumulator elements [l * n, (l + 1) * n) of the row-major M x N tile (n = M * N / 32), so
// each lane stores only its own elements and no two lanes write one address. tf32 inputs are
// truncated to tf32 inside mma_sync as the tensor cores do (their low 13 bits are ignored);
// `__float_to_tf32` rounds to nearest, ties away from zero (cvt.rna.tf32.f32). Not checked:
// that all 32 lanes take part (no warp barrier, which would make every tile step 32 OS-thread
// rendezvous).
namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
} // namespace precision
enum layout_t { mem_row_major, mem_col_major };
inline float __float_to_tf32(float x) {
  if (!std::isfinite(x)) return x;
  std::uint32_t b = std::bit_cast<std::uint32_t>(x);
  b = (b + 0x1000U) & ~0x1fffU;
  return std::bit_cast<float>(b);
}
namespace detail {
template <class T> struct elem { using type = T; };
template <> struct elem<precision::tf32> { using type = float; };
inline float as_input(float x, precision::tf32) { return std::bit_cast<float>(std::bit_cast<std::uint32_t>(x) & ~0x1fffU); }
template <class T, class P> float as_input(T x, P) { return static_cast<float>(x); }
inline int lane() { return ::emu::me() % 32; }
inline void check_ptr(const void* p, unsigned ldm, std::size_t elem) {
  if (reinterpret_cast<std::uintptr_t>(p) % 32 != 0 || (ldm * elem) % 16 != 0) {
    std::fprintf(stderr, "emu: wmma pointer %p is not 256-bit aligned or ldm %u breaks 16-byte rows\n", p, ldm);
    std::abort();
  }
}
} // namespace detail
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  using element_type = typename detail::elem<T>::type;
  static constexpr bool acc = std::is_same_v<Use, accumulator>;
  static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = acc ? M * N / 32 : rows * cols;
  element_type x[num_elements];
};
template <class Use, int M, int N, int K, class T, class L, class V>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, V v) {
  for (auto& e : f.x) e = static_cast<typename fragment<Use, M, N, K, T, L>::element_type>(v);
}
template <class Use, int M, int N, int K, class T, class L, class P>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const P* p, unsigned ldm) {
  static_assert(!std::is_same_v<Use, accumulator>, "emu: accumulator loads take a layout");
  using F = fragment<Use, M, N, K, T, L>;
  detail::check_ptr(p, ldm, sizeof(P));
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c)
      f.x[r * F::cols + c] = std::is_same_v<L, row_major> ? p[r * ldm + c] : p[c * ldm + r];
}
template <int M, int N, int K, class T, class P>
void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const P* p, unsigned ldm, layout_t l) {
  using F = fragment<accumulator, M, N, K, T>;
  detail::check_ptr(p, ldm, sizeof(P));
  for (int i = 0; i < F::num_elements; ++i) {
    const int e = detail::lane() * F::num_elements + i, r = e / N, c = e % N;
    f.x[i] = l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
  }
}
template <int M, int N, int K, class T, class P>
void store_matrix_sync(P* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t l) {
  using F = fragment<accumulator, M, N, K, T>;
  detail::check_ptr(p, ldm, sizeof(P));
  for (int i = 0; i < F::num_elements; ++i) {
    const int e = detail::lane() * F::num_elements + i, r = e / N, c = e % N;
    (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[i];
  }
}
template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, TC>& c) {
  using F = fragment<accumulator, M, N, K, TC>;
  for (int i = 0; i < F::num_elements; ++i) {
    const int e = detail::lane() * F::num_elements + i, r = e / N, col = e % N;
    float sum = c.x[i];
    for (int k = 0; k < K; ++k)
      sum = std::fma(detail::as_input(a.x[r * K + k], TA{}), detail::as_input(b.x[k * N + col], TB{}), sum);
    d.x[i] = sum;
  }
}
} // namespace nvcuda::wmma

#define threadIdx ::emu::t_tid
#define blockIdx ::emu::t_bid
#define blockDim ::emu::t_bdim
#define gridDim ::emu::t_gdim
#define __syncthreads() ::emu::syncthreads()
#define __shfl_xor_sync ::emu::shfl_xor
#define atomicAdd ::emu::atomic_add
#define atomicOr ::emu::atomic_or
#define atomicMax ::emu::atomic_max
#define __uint_as_float ::emu::uint_as_float
#define __float_as_uint ::emu::float_as_uint
#define __ldg ::emu::ldg
#define __ldcg ::emu::ldg
#define __threadfence() ::emu::threadfence()
#define __expf ::expf
using std::min;
using std::max;
// cuda_runtime.h has this overload for nvcc only.
template <class T>
cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute a, int v) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), a, v);
}
template <class T>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, T* entry, int threads,
                                                          size_t smem) {
  return ::cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, reinterpret_cast<const void*>(entry),
                                                          threads, smem);
}
