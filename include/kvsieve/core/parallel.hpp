// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Executors for data-parallel loops: `serial` (inline) and `thread_pool` (a few threads that
/// share chunks of one loop). Both offer parallel_for(n, grain, fn), which calls fn(begin, end) or
/// fn(begin, end, slot) on disjoint ranges covering [0, n) exactly once; slot in [0, size()) names
/// the executing thread, so fn may index per-thread scratch by it.
///
/// thread_pool is built to keep its speed when another process holds a core (docs/design.md,
/// "Threads"): the caller works too and claims chunks from one atomic counter, so a worker that the
/// OS has not scheduled yet simply claims nothing; parallel_for returns once every *claimed* chunk
/// is done and never waits for a worker to wake. Idle workers spin for a bounded time (yielding
/// the core) and then sleep on a futex (std::atomic::wait), never spinning unboundedly.

#include <algorithm>
#include <atomic>
#include <memory>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <kvsieve/core/error.hpp>

namespace kvsieve {

/// An executor runs a data-parallel loop.
///  1. `parallel_for(n, grain, fn)`: calls fn(begin, end) — or fn(begin, end, slot) when fn takes
///     three size_t — on disjoint ranges that together cover [0, n) once each. A range is a run of
///     whole chunks of `grain` indices (the last chunk may be short). Returns when all are done;
///     rethrows the first exception fn threw. n == 0 calls nothing.
///  2. `size()`: how many threads may run fn at once; slot < size().
/// Not required: any order among ranges, or which thread runs which.
template <class E>
concept executor = requires(E& e, std::size_t n, void (*fn)(std::size_t, std::size_t)) {
  { e.size() } -> std::convertible_to<std::size_t>;
  e.parallel_for(n, n, fn);
};

namespace detail {
template <class Fn>
inline void call_range(Fn& fn, std::size_t begin, std::size_t end, std::size_t slot) {
  if constexpr (std::is_invocable_v<Fn&, std::size_t, std::size_t, std::size_t>) {
    fn(begin, end, slot);
  } else {
    fn(begin, end);
  }
}
} // namespace detail

/// Runs every loop inline on the calling thread, as one range.
struct serial {
  [[nodiscard]] static constexpr auto size() noexcept -> std::size_t { return 1; }

  template <class Fn>
  void parallel_for(std::size_t n, std::size_t /*grain*/, Fn&& fn) const {
    if (n > 0) {
      detail::call_range(fn, 0, n, 0);
    }
  }
};
static_assert(executor<serial>);
static_assert(executor<const serial>);

/// A fixed set of worker threads for parallel_for. Thread-safe: calls from several threads on one
/// pool take turns (a second caller waits until the first loop ends). A parallel_for called from
/// inside fn on the same pool (nesting) runs inline on that thread with that thread's slot.
/// The pool must outlive every call; the destructor joins the workers.
class thread_pool {
public:
  /// n_threads counts the calling thread: 1 creates no thread and runs everything inline;
  /// 0 uses std::thread::hardware_concurrency(). `spin` bounds how long an idle worker polls for
  /// the next loop before it sleeps. Throws std::system_error if a thread cannot start.
  explicit thread_pool(std::size_t n_threads,
                       std::chrono::microseconds spin = std::chrono::microseconds(50))
      : size_(n_threads > 0 ? n_threads
                            : std::max<std::size_t>(1, std::thread::hardware_concurrency())),
        spin_(spin) {
    workers_.reserve(size_ - 1);
    try {
      for (std::size_t s = 1; s < size_; ++s) {
        workers_.emplace_back([this, s] { work(s); });
      }
    } catch (...) {
      stop();
      throw;
    }
  }
  thread_pool(const thread_pool&) = delete;
  auto operator=(const thread_pool&) -> thread_pool& = delete;
  ~thread_pool() { stop(); }

  [[nodiscard]] auto size() const noexcept -> std::size_t { return size_; }

  /// See `executor`. A loop of at most one chunk (n <= grain) runs inline without waking anyone.
  /// grain 0 counts as 1.
  template <class Fn>
  void parallel_for(std::size_t n, std::size_t grain, Fn&& fn) {
    if (n == 0) {
      return;
    }
    grain = std::max<std::size_t>(grain, 1);
    // Chunk counts live in 32 bits of the claim word; huge loops get coarser chunks.
    while ((n - 1) / grain + 1 > max_chunks) {
      grain *= 2;
    }
    const std::size_t chunks = (n - 1) / grain + 1;
    if (current_pool() == this) { // nested: we are already one of this pool's threads
      detail::call_range(fn, 0, n, current_slot());
      return;
    }
    if (size_ == 1 || chunks == 1) {
      detail::call_range(fn, 0, n, 0);
      return;
    }
    while (busy_.exchange(true, std::memory_order_acquire)) { // another thread's loop: take turns
      busy_.wait(true, std::memory_order_relaxed);
    }
    const scoped_slot me(this, 0);
    using F = std::remove_reference_t<Fn>;
    job_ = job{const_cast<void*>(static_cast<const void*>(std::addressof(fn))),
               [](void* ctx, std::size_t b, std::size_t e, std::size_t s) {
                 detail::call_range(*static_cast<F*>(ctx), b, e, s);
               },
               n, grain, chunks};
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    ++epoch_;
    claim_.store((epoch_ << 32U) | chunks, std::memory_order_release); // publishes job_
    wake_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      wake_.notify_all();
    }
    run_claims(0);
    wait_done(chunks);
    std::exception_ptr err = std::exchange(error_, nullptr);
    busy_.store(false, std::memory_order_release);
    busy_.notify_one();
    if (err) {
      std::rethrow_exception(err);
    }
  }

private:
  static constexpr std::uint64_t max_chunks = 0xffffffffU;

  struct job {
    void* ctx = nullptr;
    void (*call)(void*, std::size_t, std::size_t, std::size_t) = nullptr;
    std::size_t n = 0;
    std::size_t grain = 1;
    std::size_t chunks = 0;
  };

  // Which pool the current thread is running a loop of (for nesting), and as which slot.
  struct thread_state {
    const thread_pool* pool = nullptr;
    std::size_t slot = 0;
  };
  static auto state() noexcept -> thread_state& {
    thread_local thread_state s;
    return s;
  }
  static auto current_pool() noexcept -> const thread_pool* { return state().pool; }
  static auto current_slot() noexcept -> std::size_t { return state().slot; }
  struct scoped_slot {
    thread_state saved;
    scoped_slot(const thread_pool* p, std::size_t s) : saved(state()) { state() = {p, s}; }
    scoped_slot(const scoped_slot&) = delete;
    auto operator=(const scoped_slot&) -> scoped_slot& = delete;
    ~scoped_slot() { state() = saved; }
  };

  // Claims chunks of the current job until none is left. The claim word holds the job's epoch
  // (high 32 bits) and its unclaimed chunk count (low 32): a successful claim proves the job is
  // still running (its caller waits for this chunk), so job_ may be read after it, and a worker
  // that slept through a whole job finds the count at 0 or the epoch changed.
  void run_claims(std::size_t slot) {
    std::uint64_t v = claim_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t left = v & max_chunks;
      if (left == 0) {
        return;
      }
      if (!claim_.compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                        std::memory_order_acquire)) {
        continue;
      }
      const job j = job_;
      const std::size_t c = j.chunks - static_cast<std::size_t>(left);
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          j.call(j.ctx, c * j.grain, std::min(j.n, (c + 1) * j.grain), slot);
        } catch (...) {
          if (!failed_.exchange(true, std::memory_order_relaxed)) {
            error_ = std::current_exception(); // published by the release on done_
          }
        }
      }
      if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == j.chunks) {
        if (caller_sleeping_.load(std::memory_order_seq_cst)) {
          done_.notify_one();
        }
        return; // the job is over; its fields may change from here on
      }
      v = claim_.load(std::memory_order_acquire);
    }
  }

  // The caller waits for the chunks that workers claimed: a bounded spin, then a futex sleep.
  void wait_done(std::size_t chunks) {
    const auto deadline = std::chrono::steady_clock::now() + spin_;
    for (std::uint32_t i = 0; done_.load(std::memory_order_acquire) != chunks; ++i) {
      if (i % 64 == 63 && std::chrono::steady_clock::now() > deadline) {
        caller_sleeping_.store(true, std::memory_order_seq_cst);
        for (std::uint32_t d = done_.load(std::memory_order_seq_cst); d != chunks;
             d = done_.load(std::memory_order_seq_cst)) {
          done_.wait(d, std::memory_order_acquire);
        }
        caller_sleeping_.store(false, std::memory_order_relaxed);
        return;
      }
      if (i >= 64) {
        std::this_thread::yield();
      }
    }
  }

  void work(std::size_t slot) {
    const scoped_slot me(this, slot);
    // wake_'s value at construction, not at thread start: a worker that starts late must still
    // see the loops (and the stop) published before it ran.
    std::uint32_t seen = 0;
    for (;;) {
      seen = wait_wake(seen);
      if (stop_.load(std::memory_order_acquire)) {
        return;
      }
      run_claims(slot);
    }
  }

  // Until wake_ moves past `seen`: poll (yielding the core) for spin_, then sleep.
  auto wait_wake(std::uint32_t seen) -> std::uint32_t {
    const auto deadline = std::chrono::steady_clock::now() + spin_;
    for (std::uint32_t i = 0;; ++i) {
      const std::uint32_t w = wake_.load(std::memory_order_acquire);
      if (w != seen) {
        return w;
      }
      if (i >= 64) {
        if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) {
          break;
        }
        std::this_thread::yield();
      }
    }
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    std::uint32_t w = wake_.load(std::memory_order_seq_cst);
    while (w == seen) {
      wake_.wait(seen, std::memory_order_acquire);
      w = wake_.load(std::memory_order_acquire);
    }
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    return w;
  }

  void stop() {
    stop_.store(true, std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_seq_cst);
    wake_.notify_all();
    for (auto& t : workers_) {
      t.join();
    }
    workers_.clear();
  }

  std::size_t size_;
  std::chrono::microseconds spin_;
  std::vector<std::thread> workers_;
  job job_;                          // written by the caller before claim_ publishes it
  std::uint64_t epoch_ = 0;          // caller-only; its low 32 bits tag claim_
  std::exception_ptr error_;         // first exception of the current job
  std::atomic<std::uint64_t> claim_{0};
  std::atomic<std::uint32_t> done_{0}; // chunks finished, fits: chunks <= max_chunks
  std::atomic<bool> failed_{false};
  std::atomic<bool> busy_{false};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint32_t> wake_{0};
  std::atomic<std::uint32_t> sleepers_{0};
};
static_assert(executor<thread_pool>);

} // namespace kvsieve
