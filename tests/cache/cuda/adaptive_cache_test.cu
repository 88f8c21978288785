// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The device cache against the host cache, step for step, through the very same calls
// (cache/cache_fixture.hpp's run_cache and cache/shared_api.hpp run on either backend): the same
// choices, the same kept positions per head after prefill and after every decode step, the same
// outputs (float tolerance), the same bytes resident. Random inputs make score ties improbable; a
// near-tie flipped by float rounding would show as a one-token difference in a budget head.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <vector>

#include "cache/cache_fixture.hpp"
#include "cache/shared_api.hpp"
#include "common/catch.hpp"
#include "cache/cuda/device_backend.hpp"

#include <kvsieve/cache/cuda/adaptive_cache.cuh>
#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;
using kvsieve::testing::make_problem;
using kvsieve::testing::problem;
using kvsieve::testing::trace;

// The tie tolerance of the step-for-step comparison. The device scores with expf (CUDA: within
// 2 ulp) and sums in its own order; the host with std::exp in double-checked float order. Two
// budget members whose scores differ by less than that rounding may leave in either order, after
// which the head's kept sets (and its group's outputs) legitimately differ for the rest of the
// run. A head may therefore diverge once, only by swapping the same number of tokens, and only
// if every swapped token's score at the step before lies within `tie` (relative) of another
// swapped token's on the other side; from then on that head is no longer compared. At most one
// head in eight (at least one) may do so; everything else must match exactly.
constexpr double tie = 1e-4;

auto score_at(const std::vector<std::pair<std::int32_t, float>>& scored, std::int32_t pos)
    -> double {
  const auto it = std::lower_bound(scored.begin(), scored.end(), std::make_pair(pos, -1e30F));
  return it != scored.end() && it->first == pos ? static_cast<double>(it->second) : -1.0;
}

auto near_tie(const trace& host, const trace& dev, std::size_t s, std::size_t h) -> bool {
  const auto& a = host.pos[s][h];
  const auto& b = dev.pos[s][h];
  std::vector<std::int32_t> only_host, only_dev;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_host));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_dev));
  if (s == 0 || only_host.size() != only_dev.size() || only_host.size() > 2) {
    return false;
  }
  const auto& before = host.scored[s - 1][h];
  for (const std::int32_t x : only_host) {
    const double sx = score_at(before, x);
    bool close = false;
    for (const std::int32_t y : only_dev) {
      const double sy = score_at(before, y);
      close = close || (sx >= 0.0 && sy >= 0.0 &&
                        std::abs(sx - sy) <= tie * std::max({std::abs(sx), std::abs(sy), 1e-12}));
    }
    if (!close) {
      return false;
    }
  }
  return true;
}

void expect_same_trace(const trace& host, const trace& dev, double tol) {
  REQUIRE(dev.choices == host.choices);
  REQUIRE(dev.prefill_out.size() == host.prefill_out.size());
  for (std::size_t i = 0; i < host.prefill_out.size(); ++i) {
    REQUIRE(dev.prefill_out[i] == Approx(host.prefill_out[i]).margin(tol));
  }
  REQUIRE(dev.pos.size() == host.pos.size());
  const std::size_t heads = host.choices.size();
  std::vector<bool> diverged(heads, false);
  std::size_t n_diverged = 0;
  for (std::size_t s = 0; s < host.pos.size(); ++s) {
    INFO("step " << s);
    for (std::size_t h = 0; h < heads; ++h) {
      INFO("KV head " << h);
      if (diverged[h]) {
        continue;
      }
      if (dev.pos[s][h] != host.pos[s][h]) {
        REQUIRE(near_tie(host, dev, s, h));
        diverged[h] = true;
        ++n_diverged;
        REQUIRE(n_diverged <= std::max<std::size_t>(1, heads / 8));
        WARN("KV head " << h << " diverged at step " << s << " by a near-tie (within " << tie
                        << " relative); not compared after it");
        continue;
      }
      if (s > 0) {
        const auto& want = host.outs[s - 1];
        const auto& got = dev.outs[s - 1];
        const std::size_t width = want.size() / heads; // a KV head's query group
        for (std::size_t i = h * width; i < (h + 1) * width; ++i) {
          REQUIRE(got[i] == Approx(want[i]).margin(tol));
        }
      }
    }
  }
}

template <class T, class Ladder, class Profiler>
void compare_with(const Ladder& ladder, const Profiler& profiler, const problem& p,
                  cache_options opt, std::int32_t page_size) {
  opt.n_head_q = p.hq;
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = p.hkv, .head_dim = p.d,
                         .page_size = page_size, .max_pages = 4096,
                         .max_context = p.length + p.steps + 1};
  adaptive_cache<Ladder, Profiler, paged_store<T>> host(ladder, profiler, g, opt);
  const auto expect = kvsieve::testing::run_cache(host, p, 0, 0, true);
  adaptive_cache<Ladder, Profiler, paged_store<T, cuda_space>> dev(ladder, profiler, g, opt);
  const auto got = kvsieve::testing::run_cache(dev, p);
  expect_same_trace(expect, got, std::is_same_v<T, float> ? 2e-4 : 2e-3);
  for (std::int32_t h = 0; h < p.hkv; ++h) {
    CHECK(dev.fixed_budget({0, 0, h}) == host.fixed_budget({0, 0, h}));
  }
  const auto hr = host.report();
  const auto dr = dev.report();
  CHECK(dr.bytes_resident == hr.bytes_resident);
  CHECK(dr.kv_bytes_kept == hr.kv_bytes_kept);
  CHECK(dr.mean_kept_fraction == Approx(hr.mean_kept_fraction).epsilon(1e-9));
  REQUIRE(dr.heads.size() == hr.heads.size());
  for (std::size_t i = 0; i < hr.heads.size(); ++i) {
    CHECK(dr.heads[i].label() == hr.heads[i].label());
    CHECK(dr.heads[i].kept == hr.heads[i].kept);
  }
}

template <class T, class Ladder>
void compare(const Ladder& ladder, double threshold, const problem& p, cache_options opt,
             std::int32_t page_size) {
  compare_with<T>(ladder, recovery_profiler(threshold), p, opt, page_size);
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

TEST_CASE("CUDA cache equals the host cache with per-head budgets from the profiler",
          "[cuda][cache]") {
  // PyramidKV (per head: a budget per layer) and Ada-KV (layer-wide: the layer's budget moved
  // between heads) over H2O, whose heavy hitters rank by the plain cumulative score.
  const auto p = make_problem(300, 8, 4, 64, 120, 13);
  using h2o_ladder = ladder<policies::h2o>;
  const h2o_ladder l(policies::h2o(40, 24));
  SECTION("pyramid") { compare_with<float>(l, pyramid_profiler(48), p, {}, 16); }
  SECTION("adakv") { compare_with<float>(l, adakv_profiler(48, 0.2), p, {}, 16); }
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

namespace {
auto make_device(const store_geometry& g, const cache_options& opt) {
  return cuda::adaptive_cache<fastgen_ladder, recovery_profiler, kvsieve::bfloat16>(
      make_fastgen_ladder(), recovery_profiler(0.9), g, opt);
}
auto make_device_float(const store_geometry& g, const cache_options& opt) {
  return cuda::adaptive_cache<fastgen_ladder, recovery_profiler, float>(
      make_fastgen_ladder(), recovery_profiler(0.9), g, opt);
}
} // namespace

TEST_CASE("CUDA cache: argument errors of the shared API", "[cuda][cache]") {
  kvsieve::testing::argument_errors(make_device);
}

TEST_CASE("CUDA cache: a batched decode equals single decodes", "[cuda][cache]") {
  kvsieve::testing::batch_equals_single(make_device_float, 8, 2, 64, 24);
  kvsieve::testing::batch_equals_single(make_device, 4, 4, 32, 12);
}

namespace {
// A budget ranked by a decayed sum (score_rule::decayed): its prefill score is a weighted sum of
// every prompt row, its decode score decays each step.
template <int Thousandths>
struct decayed_budget {
  static constexpr std::string_view name = "decayed_budget";
  [[nodiscard]] constexpr auto keeps(token_info tok, step_context /*ctx*/) const noexcept
      -> bool {
    return tok.cls == token_class::special;
  }
  [[nodiscard]] constexpr auto window(step_context /*ctx*/) const noexcept -> std::int32_t {
    return 8;
  }
  [[nodiscard]] constexpr auto budget(step_context /*ctx*/) const noexcept -> std::int32_t {
    return 24;
  }
  [[nodiscard]] constexpr auto ranking() const noexcept -> score_rule {
    return score_rule::decayed(1.0F - static_cast<float>(Thousandths) / 1000.0F);
  }
};
} // namespace

TEST_CASE("CUDA cache equals the host cache for budgets ranked from other prompt rows",
          "[cuda][cache]") {
  // The device prefill sums the score sources too (TOVA's last row, SnapKV's pooled observation
  // window, decayed sums), so the peers run on the device cache.
  const auto p = make_problem(280, 8, 2, 64, 100, 17);
  SECTION("tova") { compare<float>(ladder<policies::tova>(policies::tova(64)), 1.0, p, {}, 16); }
  SECTION("snapkv") {
    compare<float>(ladder<policies::snapkv>(policies::snapkv(48, 16, 7)), 1.0, p, {}, 16);
  }
  SECTION("snapkv with Ada-KV's layer-wide budgets") {
    compare_with<float>(ladder<policies::snapkv>(policies::snapkv(48, 16, 7)),
                        adakv_profiler(40, 0.2), p, {}, 16);
  }
  SECTION("two decayed sums in one ladder, FastGen-style choice") {
    compare<float>(ladder<decayed_budget<5>, decayed_budget<20>, policies::full>(), 0.8, p, {},
                   16);
  }
}

TEST_CASE("CUDA cache: more score sources than the statistics kernel holds are refused",
          "[cuda][cache]") {
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 64,
                         .page_size = 16, .max_pages = 64};
  using five = ladder<decayed_budget<1>, decayed_budget<2>, decayed_budget<3>, decayed_budget<4>,
                      decayed_budget<5>>;
  cuda::adaptive_cache<five, recovery_profiler, float> dev(five(), recovery_profiler(1.0), g,
                                                           cache_options{.n_head_q = 4});
  const auto p = make_problem(20, 4, 2, 64, 0, 3);
  using mem = kvsieve::testing::backend<cuda_space>;
  const auto q = mem::upload(p.q);
  const auto k = mem::upload(p.k);
  auto out = mem::zeros(p.q.size());
  kvsieve::testing::expect_errc([&] {
    dev.prefill(0, 0, cuda_view<const float, 3>(q.data(), {20, 4, 64}),
                cuda_view<const float, 3>(k.data(), {20, 2, 64}),
                cuda_view<const float, 3>(k.data(), {20, 2, 64}), p.classes,
                cuda_view<float, 3>(out.data(), {20, 4, 64}));
  }, errc::invalid_argument);
  CHECK(dev.length(0, 0) == 0);
}

TEST_CASE("CUDA cache: device out-of-memory at prefill and at decode; the error is sticky",
          "[cuda][cache]") {
  using full_ladder = ladder<policies::full>;
  using mem = kvsieve::testing::backend<cuda_space>;
  const store_geometry g{.n_seq = 2, .n_layer = 1, .n_head_kv = 2, .head_dim = 64,
                         .page_size = 16, .max_pages = 8, .max_context = 256};
  cuda::adaptive_cache<full_ladder, recovery_profiler, float> dev(
      full_ladder{}, recovery_profiler(1.0), g, cache_options{.n_head_q = 4});
  auto prefill = [&](std::int32_t seq, const kvsieve::testing::problem& p) {
    const auto L = static_cast<std::size_t>(p.length);
    const auto q = mem::upload(p.q);
    const auto k = mem::upload(p.k);
    const auto v = mem::upload(p.v);
    auto out = mem::zeros(p.q.size());
    dev.prefill(seq, 0, cuda_view<const float, 3>(q.data(), {L, 4, 64}),
                cuda_view<const float, 3>(k.data(), {L, 2, 64}),
                cuda_view<const float, 3>(v.data(), {L, 2, 64}), p.classes,
                cuda_view<float, 3>(out.data(), {L, 4, 64}));
  };
  auto decode = [&](std::int32_t seq, const kvsieve::testing::problem& p, std::size_t s) {
    const auto q = mem::upload(p.dq[s]);
    const auto k = mem::upload(p.dk[s]);
    const auto v = mem::upload(p.dv[s]);
    auto out = mem::zeros(p.dq[s].size());
    dev.decode(seq, 0, cuda_view<const float, 2>(q.data(), {4, 64}),
               cuda_view<const float, 2>(k.data(), {2, 64}),
               cuda_view<const float, 2>(v.data(), {2, 64}), token_class::none,
               cuda_view<float, 2>(out.data(), {4, 64}));
  };
  // Prefill: 100 tokens need 7 pages per head, 14 > 8.
  kvsieve::testing::expect_errc([&] { prefill(0, make_problem(100, 4, 2, 64, 0, 3)); },
                                errc::out_of_memory);
  CHECK(dev.store().bytes_resident() == 0);
  CHECK(dev.length(0, 0) == 0);
  // 64 tokens fill the pool exactly (4 pages per head); the first decode step needs two more.
  const auto fit = make_problem(64, 4, 2, 64, 2, 4);
  prefill(0, fit);
  CHECK(dev.store().pages_in_use() == 8);
  decode(0, fit, 0);
  kvsieve::testing::expect_errc([&] { dev.synchronize(); }, errc::out_of_memory);
  // Sticky: every later call raises it until clear_error(); nothing ran on the device.
  kvsieve::testing::expect_errc([&] { dev.synchronize(); }, errc::out_of_memory);
  kvsieve::testing::expect_errc([&] { decode(0, fit, 1); }, errc::out_of_memory);
  kvsieve::testing::expect_errc([&] { dev.release(0); }, errc::out_of_memory);
  kvsieve::testing::expect_errc([&] { static_cast<void>(dev.report()); }, errc::out_of_memory);
  dev.clear_error();
  CHECK(dev.length(0, 0) == 64); // the failed step changed nothing
  CHECK(dev.store().size({0, 0, 0}) == 64);
  CHECK(dev.store().size({0, 0, 1}) == 64);
  dev.synchronize();
  dev.release(0);
  CHECK(dev.store().bytes_resident() == 0);
  const auto small = make_problem(40, 4, 2, 64, 3, 5);
  prefill(1, small);
  for (std::size_t s = 0; s < 3; ++s) {
    decode(1, small, s);
  }
  dev.synchronize();
  CHECK(dev.length(1, 0) == 43);
  CHECK(dev.store().size({1, 0, 1}) == 43);
  CHECK(dev.report().heads.size() == 2);
}

TEST_CASE("CUDA cache: a decode step captured into a CUDA graph and replayed equals decode calls",
          "[cuda][cache]") {
  using mem = kvsieve::testing::backend<cuda_space>;
  constexpr std::int32_t hq = 4;
  constexpr std::int32_t hkv = 2;
  constexpr std::int32_t d = 64;
  constexpr std::size_t steps = 24;
  const store_geometry g{.n_seq = 2, .n_layer = 1, .n_head_kv = hkv, .head_dim = d,
                         .page_size = 16, .max_pages = 64, .max_context = 256};
  // Frozen classes: a launch repeats the captured call's classes.
  const cache_options opt{.n_head_q = hq, .generated = generated_class_mode::frozen};
  cudaStream_t stream = nullptr;
  cuda::check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  auto graph_cache = cuda::adaptive_cache<fastgen_ladder, recovery_profiler, kvsieve::bfloat16>(
      make_fastgen_ladder(), recovery_profiler(0.9), g, opt, stream);
  auto call_cache = make_device(g, opt);
  const kvsieve::testing::problem prompts[2] = {make_problem(90, hq, hkv, d, steps, 21),
                                                make_problem(70, hq, hkv, d, steps, 22)};
  auto prefill = [&](auto& cache, std::int32_t seq) {
    const auto& p = prompts[seq];
    const auto L = static_cast<std::size_t>(p.length);
    const auto q = mem::upload(p.q);
    const auto k = mem::upload(p.k);
    const auto v = mem::upload(p.v);
    auto out = mem::zeros(p.q.size());
    cache.prefill(seq, 0, cuda_view<const float, 3>(q.data(), {L, hq, d}),
                  cuda_view<const float, 3>(k.data(), {L, hkv, d}),
                  cuda_view<const float, 3>(v.data(), {L, hkv, d}), p.classes,
                  cuda_view<float, 3>(out.data(), {L, hq, d}));
  };
  for (std::int32_t s = 0; s < 2; ++s) {
    prefill(graph_cache, s);
    prefill(call_cache, s);
  }
  // The graph's buffers, refilled before every launch; the calls get the same inputs.
  auto q = mem::zeros(2 * hq * d);
  auto k = mem::zeros(2 * hkv * d);
  auto v = mem::zeros(2 * hkv * d);
  auto out = mem::zeros(2 * hq * d);
  auto fill = [&](std::size_t s) {
    auto join = [&](auto field) {
      auto x = field(prompts[0]);
      const auto y = field(prompts[1]);
      x.insert(x.end(), y.begin(), y.end());
      return x;
    };
    q.upload(join([&](const auto& p) { return p.dq[s]; }));
    k.upload(join([&](const auto& p) { return p.dk[s]; }));
    v.upload(join([&](const auto& p) { return p.dv[s]; }));
  };
  const std::int32_t seqs[2] = {0, 1};
  const token_class classes[2] = {token_class::none, token_class::none};
  auto step = [&](auto& cache) {
    cache.decode(0, seqs, cuda_view<const float, 3>(q.data(), {2, hq, d}),
                 cuda_view<const float, 3>(k.data(), {2, hkv, d}),
                 cuda_view<const float, 3>(v.data(), {2, hkv, d}), classes,
                 cuda_view<float, 3>(out.data(), {2, hq, d}));
  };

  cudaGraph_t graph = nullptr;
  cuda::check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  step(graph_cache); // recorded, not run: the lengths stay
  cuda::check(cudaStreamEndCapture(stream, &graph), "end capture");
  CHECK(graph_cache.length(0, 0) == 90);
  cudaGraphExec_t exec = nullptr;
  cuda::check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");

  for (std::size_t s = 0; s < steps; ++s) {
    fill(s);
    cuda::check(cudaGraphLaunch(exec, stream), "launch");
    graph_cache.advance(0, seqs);
    graph_cache.synchronize();
    const auto from_graph = mem::download(out);
    step(call_cache);
    const auto from_calls = mem::download(out);
    // The graph's grids cover max_context, the calls' the current length: the same sums split
    // differently, so equal to float rounding.
    REQUIRE(from_graph.size() == from_calls.size());
    for (std::size_t i = 0; i < from_graph.size(); ++i) {
      REQUIRE(from_graph[i] == Approx(from_calls[i]).margin(1e-5).epsilon(1e-4));
    }
    for (std::int32_t seq = 0; seq < 2; ++seq) {
      for (std::int32_t h = 0; h < hkv; ++h) {
        REQUIRE(mem::positions(graph_cache, {seq, 0, h}) ==
                mem::positions(call_cache, {seq, 0, h}));
      }
    }
  }
  CHECK(graph_cache.length(0, 0) == 90 + static_cast<std::int32_t>(steps));
  CHECK(graph_cache.length(1, 0) == 70 + static_cast<std::int32_t>(steps));
  CHECK(graph_cache.report().bytes_resident == call_cache.report().bytes_resident);
  // advance() checks as decode() does.
  kvsieve::testing::expect_errc([&] { graph_cache.advance(0, std::vector<std::int32_t>{0, 0}); },
                                errc::invalid_argument);
  kvsieve::testing::expect_errc([&] { graph_cache.advance(0, std::vector<std::int32_t>{2}); },
                                errc::out_of_range);
  cuda::check(cudaGraphExecDestroy(exec), "exec destroy");
  cuda::check(cudaGraphDestroy(graph), "graph destroy");
  graph_cache.synchronize();
  cuda::check(cudaStreamDestroy(stream), "stream destroy");
}
