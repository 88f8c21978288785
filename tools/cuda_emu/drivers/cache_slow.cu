// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The CUDA adaptive_cache against the host adaptive_cache, step for step: the same choices, the
// same kept positions per head after prefill and after every decode step, the same outputs
// (float tolerance), the same bytes resident. Random inputs make score ties improbable; a
// near-tie flipped by float rounding would show as a one-token difference in a budget head.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cache/cache_fixture.hpp"
#include "common/catch.hpp"

#include <kvsieve/cache/cuda/adaptive_cache.cuh>
#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;
using kvsieve::testing::make_problem;
using kvsieve::testing::problem;
using kvsieve::testing::trace;

template <class T>
auto device_copy(const std::vector<T>& host) -> cuda::device_buffer<T> {
  cuda::device_buffer<T> d(std::max<std::size_t>(host.size(), 1));
  d.upload(host);
  return d;
}

template <class Cache>
auto run_device(Cache& cache, const problem& p) -> trace {
  trace tr;
  const auto L = static_cast<std::size_t>(p.length);
  const auto hq = static_cast<std::size_t>(p.hq);
  const auto d = static_cast<std::size_t>(p.d);
  auto q = device_copy(p.q);
  auto k = device_copy(p.k);
  auto v = device_copy(p.v);
  cuda::device_buffer<float> out(L * hq * d);
  cache.prefill(0, 0, q.data(), k.data(), v.data(), p.classes, out.data());
  tr.prefill_out.resize(L * hq * d);
  out.download(tr.prefill_out);
  auto snapshot = [&] {
    std::vector<std::vector<std::int32_t>> heads;
    for (std::int32_t h = 0; h < p.hkv; ++h) {
      std::vector<std::int32_t> pos;
      for (const auto& t : cache.store().tokens({0, 0, h})) {
        pos.push_back(t.meta.position);
      }
      std::sort(pos.begin(), pos.end());
      heads.push_back(std::move(pos));
    }
    tr.pos.push_back(std::move(heads));
  };
  snapshot();
  for (std::int32_t h = 0; h < p.hkv; ++h) {
    tr.choices.push_back(cache.choice({0, 0, h}));
  }
  cuda::device_buffer<float> dq(hq * d), dk(static_cast<std::size_t>(p.hkv) * d),
      dv(static_cast<std::size_t>(p.hkv) * d), dout(hq * d);
  for (std::size_t s = 0; s < static_cast<std::size_t>(p.steps); ++s) {
    dq.upload(p.dq[s]);
    dk.upload(p.dk[s]);
    dv.upload(p.dv[s]);
    cache.decode(0, 0, dq.data(), dk.data(), dv.data(), p.dclasses[s], dout.data());
    std::vector<float> o(hq * d);
    dout.download(o);
    tr.outs.push_back(std::move(o));
    snapshot();
  }
  cache.synchronize();
  return tr;
}

void expect_same_trace(const trace& host, const trace& dev, double tol) {
  REQUIRE(dev.choices == host.choices);
  REQUIRE(dev.prefill_out.size() == host.prefill_out.size());
  for (std::size_t i = 0; i < host.prefill_out.size(); ++i) {
    REQUIRE(dev.prefill_out[i] == Approx(host.prefill_out[i]).margin(tol));
  }
  REQUIRE(dev.pos.size() == host.pos.size());
  for (std::size_t s = 0; s < host.pos.size(); ++s) {
    INFO("step " << s);
    REQUIRE(dev.pos[s] == host.pos[s]);
    if (s > 0) {
      for (std::size_t i = 0; i < host.outs[s - 1].size(); ++i) {
        REQUIRE(dev.outs[s - 1][i] == Approx(host.outs[s - 1][i]).margin(tol));
      }
    }
  }
}

template <class T, class Ladder>
void compare(const Ladder& ladder, double threshold, const problem& p, cache_options opt,
             std::int32_t page_size) {
  opt.n_head_q = p.hq;
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = p.hkv, .head_dim = p.d,
                         .page_size = page_size, .max_pages = 4096};
  adaptive_cache<Ladder, recovery_profiler, paged_store<T>> host(
      ladder, recovery_profiler(threshold), g, opt);
  const auto expect = kvsieve::testing::run_cache(host, p);
  cuda::adaptive_cache<Ladder, recovery_profiler, T> dev(ladder, recovery_profiler(threshold), g,
                                                         p.length + p.steps + 1, opt);
  const auto got = run_device(dev, p);
  expect_same_trace(expect, got, std::is_same_v<T, float> ? 2e-4 : 2e-3);
  const auto hr = host.report();
  const auto dr = dev.report();
  CHECK(dr.bytes_resident == hr.bytes_resident);
  CHECK(dr.kv_bytes_kept == hr.kv_bytes_kept);
  CHECK(dr.mean_kept_fraction == Approx(hr.mean_kept_fraction).epsilon(1e-9));
}
} // namespace

using namespace kvsieve;
// Policies whose window or budget collapses at step `cut`: more than 1024 tokens of one head
// leave in one step (the step kernel's slow compaction path).
struct shrink_window {
  static constexpr std::string_view name = "shrink_window";
  std::int32_t cut = 0;
  [[nodiscard]] constexpr auto keeps(token_info tok, step_context) const noexcept -> bool {
    return tok.cls == token_class::special;
  }
  [[nodiscard]] constexpr auto window(step_context ctx) const noexcept -> std::int32_t {
    return ctx.length < cut ? ctx.length : 8;
  }
  friend constexpr auto operator==(const shrink_window&, const shrink_window&) -> bool = default;
};
struct shrink_budget {
  static constexpr std::string_view name = "shrink_budget";
  std::int32_t cut = 0;
  [[nodiscard]] constexpr auto keeps(token_info, step_context) const noexcept -> bool { return false; }
  [[nodiscard]] constexpr auto window(step_context ctx) const noexcept -> std::int32_t {
    return ctx.length < cut ? ctx.length : 8;
  }
  [[nodiscard]] constexpr auto budget(step_context ctx) const noexcept -> std::int32_t {
    return ctx.length < cut ? ctx.length : 20;
  }
  friend constexpr auto operator==(const shrink_budget&, const shrink_budget&) -> bool = default;
};

TEST_CASE("slow path: more than 1024 evictions in one step", "[slow]") {
  const auto p = make_problem(1100, 4, 2, 32, 6, 9);
  SECTION("window collapse, float") {
    compare<float>(ladder<shrink_window>(shrink_window{1103}), 0.0, p, {}, 16);
  }
  SECTION("budget collapse, bf16") {
    compare<kvsieve::bfloat16>(ladder<shrink_budget>(shrink_budget{1103}), 0.0, p, {.n_sinks = 2}, 8);
  }
}
