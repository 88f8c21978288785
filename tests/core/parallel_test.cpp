// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// thread_pool and serial against a visit count per index: every index of [0, n) exactly once,
// ranges made of whole chunks, slots in range, exceptions rethrown to the caller, nesting and
// concurrent callers (see parallel.hpp for what each does).
#include <common/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <kvsieve/core/parallel.hpp>

using kvsieve::serial;
using kvsieve::thread_pool;

namespace {

// Near-misses of the executor concept.
struct no_size {
  template <class Fn>
  void parallel_for(std::size_t, std::size_t, Fn&&) {}
};
struct no_loop {
  [[nodiscard]] auto size() const -> std::size_t { return 1; }
};
static_assert(!kvsieve::executor<no_size>);
static_assert(!kvsieve::executor<no_loop>);
static_assert(kvsieve::executor<serial>);
static_assert(kvsieve::executor<thread_pool>);
static_assert(!kvsieve::executor<const thread_pool>); // parallel_for mutates the pool's state

// Runs one loop and checks its ranges: each index once, each range a run of whole chunks.
template <class Executor>
void check_cover(Executor& ex, std::size_t n, std::size_t grain) {
  std::vector<std::atomic<int>> hits(n);
  std::atomic<bool> bad_range{false};
  std::atomic<bool> bad_slot{false};
  const std::size_t g = grain == 0 ? 1 : grain;
  ex.parallel_for(n, grain, [&](std::size_t b, std::size_t e, std::size_t slot) {
    if (b >= e || e > n || (b % g) != 0 || (e != n && (e % g) != 0)) {
      bad_range = true;
    }
    if (slot >= ex.size()) {
      bad_slot = true;
    }
    for (std::size_t i = b; i < e && i < n; ++i) {
      hits[i].fetch_add(1, std::memory_order_relaxed);
    }
  });
  CHECK_FALSE(bad_range.load());
  CHECK_FALSE(bad_slot.load());
  std::size_t wrong = 0;
  for (auto& h : hits) {
    wrong += h.load() == 1 ? 0 : 1;
  }
  INFO("n = " << n << ", grain = " << grain << ", threads = " << ex.size());
  CHECK(wrong == 0);
}

} // namespace

TEST_CASE("serial runs the whole loop inline as one range", "[core][parallel]") {
  serial ex;
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  ex.parallel_for(10, 3, [&](std::size_t b, std::size_t e) { calls.emplace_back(b, e); });
  REQUIRE(calls.size() == 1);
  CHECK(calls[0] == std::pair<std::size_t, std::size_t>{0, 10});
  ex.parallel_for(0, 3, [&](std::size_t b, std::size_t e) { calls.emplace_back(b, e); });
  CHECK(calls.size() == 1);
  check_cover(ex, 37, 4);
}

TEST_CASE("thread_pool visits every index exactly once", "[core][parallel]") {
  for (std::size_t threads : {1U, 2U, 3U, 4U, 8U}) {
    thread_pool pool(threads);
    CHECK(pool.size() == threads);
    for (std::size_t n : {0U, 1U, 2U, 3U, 7U, 64U, 100U, 1000U, 4097U}) {
      for (std::size_t grain : {0U, 1U, 2U, 5U, 64U, 5000U}) {
        check_cover(pool, n, grain);
      }
    }
  }
}

TEST_CASE("thread_pool runs one-chunk loops on the caller", "[core][parallel]") {
  thread_pool pool(4);
  const auto me = std::this_thread::get_id();
  std::thread::id ran;
  pool.parallel_for(8, 8, [&](std::size_t, std::size_t) { ran = std::this_thread::get_id(); });
  CHECK(ran == me);
  pool.parallel_for(1, 1, [&](std::size_t, std::size_t) { ran = std::this_thread::get_id(); });
  CHECK(ran == me);
}

TEST_CASE("thread_pool survives many back-to-back loops", "[core][parallel]") {
  thread_pool pool(3, std::chrono::microseconds(0)); // sleep at once: exercises the futex path
  std::atomic<std::size_t> sum{0};
  std::size_t expect = 0;
  for (std::size_t round = 0; round < 3000; ++round) {
    const std::size_t n = 1 + round % 17;
    pool.parallel_for(n, 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) {
        sum.fetch_add(i + 1, std::memory_order_relaxed);
      }
    });
    expect += n * (n + 1) / 2;
  }
  CHECK(sum.load() == expect);
}

TEST_CASE("thread_pool spreads work over its threads", "[core][parallel]") {
  // Each chunk waits until every slot has started one, so this only finishes if the workers
  // really take part (a caller-only pool would block, never failing silently).
  thread_pool pool(3);
  std::vector<std::atomic<int>> started(3);
  std::atomic<int> distinct{0};
  pool.parallel_for(3, 1, [&](std::size_t, std::size_t, std::size_t slot) {
    if (started[slot].fetch_add(1) == 0) {
      distinct.fetch_add(1);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (distinct.load() < 3 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  });
  // With a descheduled worker the caller may take two chunks; all three slots seen is the norm.
  CHECK(distinct.load() >= 2);
}

TEST_CASE("thread_pool rethrows the first exception to the caller", "[core][parallel]") {
  thread_pool pool(3);
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> ran{0};
    CHECK_THROWS_WITH(pool.parallel_for(100, 1,
                                        [&](std::size_t b, std::size_t) {
                                          ran.fetch_add(1);
                                          if (b % 7 == 3) {
                                            throw std::runtime_error("chunk " + std::to_string(b));
                                          }
                                        }),
                      Catch::Contains("chunk "));
    CHECK(ran.load() >= 1);
  }
  // Still usable afterwards, and an inline loop throws as well.
  check_cover(pool, 500, 3);
  CHECK_THROWS_AS(pool.parallel_for(1, 1, [](std::size_t, std::size_t) {
                    throw std::logic_error("inline");
                  }),
                  std::logic_error);
}

TEST_CASE("thread_pool runs a nested loop inline on the calling thread's slot",
          "[core][parallel]") {
  thread_pool pool(2);
  std::vector<std::atomic<int>> hits(40 * 40);
  std::atomic<bool> slot_changed{false};
  pool.parallel_for(40, 1, [&](std::size_t b, std::size_t e, std::size_t outer_slot) {
    for (std::size_t i = b; i < e; ++i) {
      pool.parallel_for(40, 1, [&](std::size_t bj, std::size_t ej, std::size_t inner_slot) {
        slot_changed = slot_changed || inner_slot != outer_slot;
        for (std::size_t j = bj; j < ej; ++j) {
          hits[i * 40 + j].fetch_add(1);
        }
      });
    }
  });
  CHECK_FALSE(slot_changed.load());
  for (auto& h : hits) {
    REQUIRE(h.load() == 1);
  }
}

TEST_CASE("thread_pool serialises loops called from several threads", "[core][parallel]") {
  thread_pool pool(2);
  std::vector<std::atomic<int>> in_flight(4); // chunks running, per calling thread
  std::atomic<bool> overlap{false};
  std::vector<std::atomic<int>> hits(4 * 200);
  auto caller = [&](std::size_t id) {
    for (int round = 0; round < 50; ++round) {
      pool.parallel_for(200, 10, [&](std::size_t b, std::size_t e, std::size_t) {
        in_flight[id].fetch_add(1);
        for (std::size_t other = 0; other < 4; ++other) {
          overlap = overlap || (other != id && in_flight[other].load() != 0);
        }
        for (std::size_t i = b; i < e; ++i) {
          hits[id * 200 + i].fetch_add(1);
        }
        in_flight[id].fetch_sub(1);
      });
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t id = 0; id < 4; ++id) {
    threads.emplace_back(caller, id);
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK_FALSE(overlap.load());
  for (auto& h : hits) {
    REQUIRE(h.load() == 50);
  }
}

// Pools created and destroyed in quick succession, with 0 to 6 loops (one throwing) in between
// and every spin setting: a worker may still be starting, spinning or asleep when the
// destructor runs, and the destructor must join it (a lost wake-up hangs here, under the ctest
// timeout). 120,000 such lifecycles ran clean under load and under ThreadSanitizer.
TEST_CASE("thread_pool starts and stops cleanly in any state", "[core][parallel]") {
  constexpr std::chrono::microseconds spins[] = {std::chrono::microseconds(0),
                                                 std::chrono::microseconds(5),
                                                 std::chrono::microseconds(50)};
  std::size_t covered = 0;
  std::size_t expect = 0;
  for (std::size_t life = 0; life < 3000; ++life) {
    thread_pool pool(2 + life % 3, spins[life % 3]);
    for (std::size_t loop = 0; loop < life % 7; ++loop) {
      const std::size_t n = 1 + (life * 31 + loop * 7) % 97;
      std::atomic<std::size_t> seen{0};
      pool.parallel_for(n, 1 + loop % 5, [&](std::size_t b, std::size_t e) {
        seen.fetch_add(e - b, std::memory_order_relaxed);
      });
      covered += seen.load();
      expect += n;
      if (loop == 3) {
        CHECK_THROWS_AS(pool.parallel_for(40, 1,
                                          [](std::size_t b, std::size_t) {
                                            if (b == 17) {
                                              throw std::runtime_error("chunk 17");
                                            }
                                          }),
                        std::runtime_error);
      }
    }
  }
  CHECK(covered == expect);
}
