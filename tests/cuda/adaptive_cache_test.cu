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

TEMPLATE_TEST_CASE("CUDA cache equals the host cache step for step (FastGen ladder)",
                   "[cuda][cache]", float, kvsieve::bfloat16) {
  const auto shape = GENERATE(std::array<std::int32_t, 3>{4, 4, 64},
                              std::array<std::int32_t, 3>{8, 2, 128},
                              std::array<std::int32_t, 3>{4, 1, 32});
  const double threshold = GENERATE(0.7, 0.9, 0.98);
  const auto p = make_problem(300, shape[0], shape[1], shape[2], 300, 11);
  compare<TestType>(make_fastgen_ladder(), threshold, p, {}, 16);
}

TEST_CASE("CUDA cache equals the host cache over a long decode", "[cuda][cache][long]") {
  // 1000-token prompt, 3000 steps: windows and budgets grow past several chunks and pages.
  const auto p = make_problem(1000, 8, 2, 128, 3000, 21);
  compare<kvsieve::bfloat16>(make_fastgen_ladder(), 0.9, p, {}, 16);
}

TEST_CASE("CUDA cache equals the host cache under every section-6 option", "[cuda][cache]") {
  const auto p = make_problem(260, 8, 2, 64, 400, 5);
  SECTION("sinks, worst-case group, mean ranking, prompt bases") {
    fastgen_params fp;
    fp.ranking = score_mode::mean;
    fp.window_base = length_base::prompt;
    fp.budget_base = length_base::prompt;
    compare<float>(make_fastgen_ladder(fp), 0.95, p,
                   {.n_sinks = 4, .group = group_reduce::worst}, 8);
  }
  SECTION("drop before attention, frozen classes, last-k recovery rows") {
    compare<float>(make_fastgen_ladder(), 0.9, p,
                   {.recovery_rows = 64,
                    .new_token = new_token_mode::drop_before_attention,
                    .generated = generated_class_mode::frozen},
                   32);
  }
  SECTION("fixed local+frequent and streaming on every head (one candidate: any T picks it)") {
    using namespace kvsieve::policies;
    compare<float>(ladder<local_frequent>(local_frequent(local(0.2), frequent(0.1))), 1.0, p, {},
                   16);
    compare<float>(ladder<streaming>(streaming(sinks(4), recent(64))), 1.0, p, {}, 16);
  }
}

namespace {
// Policies whose window or budget collapses at step `cut`: more than 1024 tokens of one head
// leave in one step (the step kernel's slow compaction path).
struct shrink_window {
  static constexpr std::string_view name = "shrink_window";
  std::int32_t cut = 0;
  [[nodiscard]] constexpr auto keeps(token_info tok, step_context /*ctx*/) const noexcept
      -> bool {
    return tok.cls == token_class::special;
  }
  [[nodiscard]] constexpr auto window(step_context ctx) const noexcept -> std::int32_t {
    return ctx.length < cut ? ctx.length : 8;
  }
};
struct shrink_budget {
  static constexpr std::string_view name = "shrink_budget";
  std::int32_t cut = 0;
  [[nodiscard]] constexpr auto keeps(token_info /*tok*/, step_context /*ctx*/) const noexcept
      -> bool {
    return false;
  }
  [[nodiscard]] constexpr auto window(step_context ctx) const noexcept -> std::int32_t {
    return ctx.length < cut ? ctx.length : 8;
  }
  [[nodiscard]] constexpr auto budget(step_context ctx) const noexcept -> std::int32_t {
    return ctx.length < cut ? ctx.length : 20;
  }
};
} // namespace

// One candidate each, so any T picks it; the comparison is step for step as above.
TEST_CASE("CUDA cache: more than 1024 evictions in one step (slow compaction path)",
          "[cuda][cache][slow]") {
  const auto p = make_problem(1100, 4, 2, 32, 6, 9);
  SECTION("window collapse, float") {
    compare<float>(ladder<shrink_window>(shrink_window{1103}), 1.0, p, {}, 16);
  }
  SECTION("budget collapse, bf16") {
    compare<kvsieve::bfloat16>(ladder<shrink_budget>(shrink_budget{1103}), 1.0, p,
                               {.n_sinks = 2}, 8);
  }
}

TEST_CASE("CUDA cache: argument errors", "[cuda][cache]") {
  const store_geometry g{.n_seq = 2, .n_layer = 1, .n_head_kv = 2, .head_dim = 64,
                         .page_size = 16, .max_pages = 64};
  cuda::adaptive_cache dev(make_fastgen_ladder(), recovery_profiler(0.9), g, 256,
                           cache_options{.n_head_q = 4});
  cuda::device_buffer<float> buf(4096);
  const token_class cls[1] = {token_class::none};
  const std::int32_t seqs[2] = {0, 0};
  CHECK_THROWS_AS(dev.decode(0, 0, buf.data(), buf.data(), buf.data(), token_class::none,
                             buf.data()),
                  error); // decode before prefill
  CHECK_THROWS_AS(dev.decode(0, seqs, buf.data(), buf.data(), buf.data(), cls, buf.data()),
                  error); // one class for a batch of two
  CHECK_THROWS_AS(dev.prefill(2, 0, buf.data(), buf.data(), buf.data(), {}, buf.data()), error);
  CHECK_THROWS_AS(dev.prefill(0, 0, buf.data(), buf.data(), buf.data(), {}, buf.data()), error);
  const auto p = make_problem(300, 4, 2, 64, 0, 3); // longer than max_context 256
  CHECK_THROWS_AS(dev.prefill(0, 0, buf.data(), buf.data(), buf.data(), p.classes, buf.data()),
                  error);
}

TEST_CASE("CUDA cache: device out-of-memory at prefill and at decode leaves it usable",
          "[cuda][cache]") {
  using full_ladder = ladder<policies::full>;
  const store_geometry g{.n_seq = 2, .n_layer = 1, .n_head_kv = 2, .head_dim = 64,
                         .page_size = 16, .max_pages = 8};
  cuda::adaptive_cache dev(full_ladder{}, recovery_profiler(1.0), g, 256,
                           cache_options{.n_head_q = 4});
  // Prefill: 100 tokens need 7 pages per head, 14 > 8.
  const auto big = make_problem(100, 4, 2, 64, 0, 3);
  auto q = device_copy(big.q);
  auto k = device_copy(big.k);
  auto v = device_copy(big.v);
  cuda::device_buffer<float> out(big.q.size());
  try {
    dev.prefill(0, 0, q.data(), k.data(), v.data(), big.classes, out.data());
    FAIL("a prefill larger than the pool did not throw");
  } catch (const error& e) {
    CHECK(e.code() == errc::out_of_memory);
  }
  CHECK(dev.store().bytes_resident() == 0);
  CHECK(dev.length(0, 0) == 0);
  // 64 tokens fill the pool exactly (4 pages per head); the first decode step needs two more.
  const auto fit = make_problem(64, 4, 2, 64, 1, 4);
  auto fq = device_copy(fit.q);
  auto fk = device_copy(fit.k);
  auto fv = device_copy(fit.v);
  dev.prefill(0, 0, fq.data(), fk.data(), fv.data(), fit.classes, out.data());
  CHECK(dev.store().pages_in_use() == 8);
  auto dq = device_copy(fit.dq[0]);
  auto dk = device_copy(fit.dk[0]);
  auto dv = device_copy(fit.dv[0]);
  dev.decode(0, 0, dq.data(), dk.data(), dv.data(), token_class::none, out.data());
  try {
    dev.synchronize();
    FAIL("a decode step past the pool did not raise at synchronize()");
  } catch (const error& e) {
    CHECK(e.code() == errc::out_of_memory);
  }
  CHECK(dev.length(0, 0) == 64); // the failed step changed nothing
  CHECK(dev.store().size({0, 0, 0}) == 64);
  CHECK(dev.store().size({0, 0, 1}) == 64);
  dev.release(0);
  CHECK(dev.store().bytes_resident() == 0);
  const auto small = make_problem(40, 4, 2, 64, 3, 5);
  auto sq = device_copy(small.q);
  auto sk = device_copy(small.k);
  auto sv = device_copy(small.v);
  dev.prefill(1, 0, sq.data(), sk.data(), sv.data(), small.classes, out.data());
  for (std::size_t s = 0; s < 3; ++s) {
    auto a = device_copy(small.dq[s]);
    auto b = device_copy(small.dk[s]);
    auto c = device_copy(small.dv[s]);
    dev.decode(1, 0, a.data(), b.data(), c.data(), token_class::none, out.data());
  }
  dev.synchronize();
  CHECK(dev.length(1, 0) == 43);
  CHECK(dev.store().size({1, 0, 1}) == 43);
}
