// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// head_stepper driven by an "engine" written here: its own K/V rows per head (mirroring the
// stepper's slot_moves), its own causal prefill and decode attention in double precision, its
// own column sums. After prefill and after every decode step the kept positions must equal
// adaptive_cache's on the same data exactly, and the attention outputs agree within 1e-4.
#include <cache/cache_fixture.hpp>
#include <common/expect_error.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace {
using namespace kvsieve;
using namespace kvsieve::policies;
using kvsieve::testing::make_problem;
using kvsieve::testing::problem;
using kvsieve::testing::run_cache;
using kvsieve::testing::trace;

/// The engine's prompt attention of query head qh over KV head h: causal softmax in double,
/// row-major [L, L], zero above the diagonal.
auto engine_prompt_attention(const problem& p, std::int32_t qh, std::int32_t h, double scale)
    -> std::vector<double> {
  const auto n = static_cast<std::size_t>(p.length);
  const auto d = static_cast<std::size_t>(p.d);
  std::vector<double> a(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    const float* q = p.q.data() + (i * static_cast<std::size_t>(p.hq) + static_cast<std::size_t>(qh)) * d;
    double m = -1e300;
    for (std::size_t j = 0; j <= i; ++j) {
      const float* k = p.k.data() + (j * static_cast<std::size_t>(p.hkv) + static_cast<std::size_t>(h)) * d;
      double dot = 0.0;
      for (std::size_t c = 0; c < d; ++c) {
        dot += static_cast<double>(q[c]) * static_cast<double>(k[c]);
      }
      a[i * n + j] = scale * dot;
      m = std::max(m, a[i * n + j]);
    }
    double sum = 0.0;
    for (std::size_t j = 0; j <= i; ++j) {
      a[i * n + j] = std::exp(a[i * n + j] - m);
      sum += a[i * n + j];
    }
    for (std::size_t j = 0; j <= i; ++j) {
      a[i * n + j] /= sum;
    }
  }
  return a;
}

/// Column sums of A under a score source's rows and weights (pooling is combine_column_sums').
auto engine_column_sums(const std::vector<double>& a, std::int32_t length,
                        const score_source& src) -> std::vector<double> {
  const auto n = static_cast<std::size_t>(length);
  std::vector<double> out(n, 0.0);
  for (std::int32_t i = 0; i < length; ++i) {
    if (src.last_rows > 0 && i < length - src.last_rows) {
      continue;
    }
    const double w = std::pow(static_cast<double>(src.decay), length - 1 - i);
    for (std::size_t j = 0; j <= static_cast<std::size_t>(i); ++j) {
      out[j] += w * a[static_cast<std::size_t>(i) * n + j];
    }
  }
  return out;
}

/// near_w[j] = sum over rows j <= i < j + w of A[i, j] (head_stats' definition).
auto engine_near_sums(const std::vector<double>& a, std::int32_t length, std::int32_t w)
    -> std::vector<double> {
  const auto n = static_cast<std::size_t>(length);
  std::vector<double> out(n, 0.0);
  for (std::int32_t j = 0; j < length; ++j) {
    for (std::int32_t i = j; i < std::min(length, j + w); ++i) {
      out[static_cast<std::size_t>(j)] +=
          a[static_cast<std::size_t>(i) * n + static_cast<std::size_t>(j)];
    }
  }
  return out;
}

/// One KV head of the engine: K/V rows in the stepper's slots, and its own decode attention.
struct engine_head {
  const problem* p;
  std::int32_t h;
  std::int32_t group;
  double scale;
  group_reduce reduce;
  head_stepper stepper;
  std::vector<std::vector<float>> k, v; // [slot][d]
  std::vector<double> colsums;          // [group][L] scratch

  [[nodiscard]] auto key_of(std::int32_t pos) const -> std::vector<float> {
    return row_of(p->k, p->dk, pos);
  }
  [[nodiscard]] auto value_of(std::int32_t pos) const -> std::vector<float> {
    return row_of(p->v, p->dv, pos);
  }
  [[nodiscard]] auto row_of(const std::vector<float>& prompt,
                            const std::vector<std::vector<float>>& gen, std::int32_t pos) const
      -> std::vector<float> {
    const auto d = static_cast<std::size_t>(p->d);
    const float* src = pos < p->length
                           ? prompt.data() + (static_cast<std::size_t>(pos) *
                                                  static_cast<std::size_t>(p->hkv) +
                                              static_cast<std::size_t>(h)) * d
                           : gen[static_cast<std::size_t>(pos - p->length)].data() +
                                 static_cast<std::size_t>(h) * d;
    return {src, src + d};
  }

  /// Copies the kept prompt rows into slots 0..n-1.
  void load(std::span<const std::int32_t> kept) {
    k.clear();
    v.clear();
    for (const auto pos : kept) {
      k.push_back(key_of(pos));
      v.push_back(value_of(pos));
    }
  }

  /// Prefill through prefill(policy, classes, scores): column sums under the policy's source.
  template <policy P>
  void prefill(const P& pol, std::int32_t budget = -1) {
    const score_source src = source_of(pol);
    colsums.clear();
    for (std::int32_t g = 0; g < group; ++g) {
      const auto a = engine_prompt_attention(*p, h * group + g, h, scale);
      const auto c = engine_column_sums(a, p->length, src);
      colsums.insert(colsums.end(), c.begin(), c.end());
    }
    std::vector<double> scores;
    combine_column_sums(colsums, group, reduce, src, scores);
    load(stepper.prefill(pol, p->classes, scores, budget));
  }

  /// The slot contract: the rows in the engine's slots are the keys of the stepper's positions.
  void check_rows() const {
    REQUIRE(k.size() == static_cast<std::size_t>(stepper.size()));
    for (std::int32_t s = 0; s < stepper.size(); ++s) {
      REQUIRE(k[static_cast<std::size_t>(s)] == key_of(stepper.position(s)));
      REQUIRE(v[static_cast<std::size_t>(s)] == value_of(stepper.position(s)));
    }
  }

  void apply(std::span<const slot_move> moves) {
    for (const auto& m : moves) {
      REQUIRE(m.slot >= 0);
      REQUIRE(static_cast<std::size_t>(m.slot) < k.size());
      if (m.moved_from >= 0) {
        REQUIRE(static_cast<std::size_t>(m.moved_from) == k.size() - 1); // always the last
        k[static_cast<std::size_t>(m.slot)] = k.back();
        v[static_cast<std::size_t>(m.slot)] = v.back();
      } else {
        REQUIRE(static_cast<std::size_t>(m.slot) == k.size() - 1);
      }
      k.pop_back();
      v.pop_back();
    }
  }

  /// Decode step s under `pol`; returns the group's outputs [group * d]. With `logits`, the
  /// stepper gets the raw logits and log-sum-exps instead of the probabilities.
  template <policy P>
  auto step(const P& pol, std::size_t s, bool logits) -> std::vector<float> {
    const auto d = static_cast<std::size_t>(p->d);
    const std::int32_t pos = p->length + static_cast<std::int32_t>(s);
    const std::int32_t slot = stepper.begin(pol, p->dclasses[s]);
    if (slot >= 0) {
      REQUIRE(static_cast<std::size_t>(slot) == k.size());
      k.push_back(key_of(pos));
      v.push_back(value_of(pos));
    }
    const std::size_t n = k.size();
    const auto g = static_cast<std::size_t>(group);
    std::vector<double> prob(g * n);
    std::vector<float> lg(g * n), lse(g), out(g * d, 0.0F);
    for (std::size_t qg = 0; qg < g; ++qg) {
      const float* q = p->dq[s].data() + (static_cast<std::size_t>(h) * g + qg) * d;
      double m = -1e300;
      for (std::size_t j = 0; j < n; ++j) {
        double dot = 0.0;
        for (std::size_t c = 0; c < d; ++c) {
          dot += static_cast<double>(q[c]) * static_cast<double>(k[j][c]);
        }
        prob[qg * n + j] = scale * dot;
        lg[qg * n + j] = static_cast<float>(scale * dot);
        m = std::max(m, scale * dot);
      }
      double sum = 0.0;
      for (std::size_t j = 0; j < n; ++j) {
        sum += std::exp(prob[qg * n + j] - m);
      }
      lse[qg] = static_cast<float>(m + std::log(sum));
      for (std::size_t j = 0; j < n; ++j) {
        prob[qg * n + j] = std::exp(prob[qg * n + j] - m) / sum;
        for (std::size_t c = 0; c < d; ++c) {
          out[qg * d + c] += static_cast<float>(prob[qg * n + j] * static_cast<double>(v[j][c]));
        }
      }
    }
    std::vector<float> combined(n);
    for (std::size_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (std::size_t qg = 0; qg < g; ++qg) {
        acc = reduce == group_reduce::mean ? acc + prob[qg * n + j]
                                           : std::max(acc, prob[qg * n + j]);
      }
      combined[j] = static_cast<float>(reduce == group_reduce::mean ? acc / static_cast<double>(g)
                                                                    : acc);
    }
    apply(logits ? stepper.finish_from_logits(pol, lg, lse, reduce) : stepper.finish(pol, combined));
    check_rows();
    return out;
  }

  [[nodiscard]] auto sorted_positions() const -> std::vector<std::int32_t> {
    std::vector<std::int32_t> out(stepper.positions().begin(), stepper.positions().end());
    std::sort(out.begin(), out.end());
    return out;
  }
};

auto make_engine(const problem& p, std::int32_t h, const cache_options& opt) -> engine_head {
  return engine_head{&p, h, p.hq / p.hkv, 1.0 / std::sqrt(static_cast<double>(p.d)), opt.group,
                     head_stepper({.n_sinks = opt.n_sinks, .new_token = opt.new_token}),
                     {}, {}, {}};
}

/// Steps `e` through the problem with the policy `with(fn)` hands out, comparing with trace tr.
template <class With>
void compare_decode(engine_head& e, const problem& p, const trace& tr, With&& with, bool logits) {
  const auto h = static_cast<std::size_t>(e.h);
  const auto gd = static_cast<std::size_t>(e.group * p.d);
  REQUIRE(e.sorted_positions() == tr.pos[0][h]);
  e.check_rows();
  for (std::size_t s = 0; s < static_cast<std::size_t>(p.steps); ++s) {
    INFO("decode step " << s);
    std::vector<float> out;
    with([&](const auto& pol) { out = e.step(pol, s, logits); });
    REQUIRE(e.sorted_positions() == tr.pos[s + 1][h]);
    for (std::size_t c = 0; c < gd; ++c) {
      REQUIRE(out[c] == Approx(tr.outs[s][h * gd + c]).margin(1e-4));
    }
  }
}

template <policy P>
void check_policy(const P& pol, cache_options opt, std::int32_t hq, std::int32_t hkv,
                  std::uint32_t seed, bool logits = false) {
  const auto p = make_problem(48, hq, hkv, 16, 40, seed);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = hkv, .head_dim = 16,
                         .page_size = 8};
  opt.n_head_q = hq;
  adaptive_cache cache(ladder<P>(pol), recovery_profiler(0.95), g, opt);
  const auto tr = run_cache(cache, p);
  for (std::int32_t h = 0; h < hkv; ++h) {
    INFO("policy " << P::name << ", KV head " << h << (logits ? ", logits + lse" : ""));
    auto e = make_engine(p, h, opt);
    e.prefill(pol);
    compare_decode(e, p, tr, [&](auto&& fn) { fn(pol); }, logits);
    CHECK(e.stepper.size() < p.length + p.steps); // the policy did evict
  }
}

auto fastgen_policy() -> special_punct_frequent_local {
  return special_punct_frequent_local({}, {}, frequent(0.2), local(0.15));
}

} // namespace

TEST_CASE("stepper + an independent engine equals adaptive_cache: fixed policies",
          "[stepper]") {
  SECTION("tova, MHA") { check_policy(tova(12), {}, 2, 2, 101); }
  SECTION("tova, GQA") { check_policy(tova(10), {}, 8, 2, 102); }
  SECTION("h2o, GQA") { check_policy(h2o(6, 8), {}, 4, 2, 103); }
  SECTION("h2o, MQA, worst-case group") {
    check_policy(h2o(6, 8), {.group = group_reduce::worst}, 4, 1, 104);
  }
  SECTION("special+punct+frequent+local (r_f 0.2, r_l 0.15)") {
    check_policy(fastgen_policy(), {}, 4, 2, 105);
  }
  SECTION("special+punct+frequent+local, 3 sinks, worst-case group") {
    check_policy(fastgen_policy(), {.n_sinks = 3, .group = group_reduce::worst}, 8, 2, 106);
  }
  SECTION("special+punct+frequent (mean scores, budget fixed at L)") {
    check_policy(special_punct_frequent({}, {}, frequent(0.25, length_base::prompt,
                                                         score_mode::mean)),
                 {}, 4, 2, 107);
  }
  SECTION("special+punct, new tokens dropped before attention") {
    check_policy(special_punct{}, {.new_token = new_token_mode::drop_before_attention}, 4, 2,
                 108);
  }
  SECTION("snapkv (observation window, max-pooled scores)") {
    check_policy(snapkv(10, 6, 3), {}, 4, 2, 109);
  }
}

TEST_CASE("stepper + an independent engine equals adaptive_cache: FastGen ladder, per-head "
          "choice from head_planner",
          "[stepper][fastgen]") {
  std::set<std::size_t> rungs;
  for (const double threshold : {0.5, 0.8, 0.95}) {
    INFO("T = " << threshold);
    const auto p = make_problem(64, 8, 4, 16, 40, 111);
    const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 4, .head_dim = 16,
                           .page_size = 16};
    const auto lad = make_fastgen_ladder({.local_ratio = 0.2, .frequent_ratio = 0.2});
    adaptive_cache cache(lad, recovery_profiler(threshold), g, {.n_head_q = 8});
    const auto tr = run_cache(cache, p);
    const auto windows = ladder_windows(lad, p.length);
    head_planner planner;
    for (std::int32_t h = 0; h < 4; ++h) {
      INFO("KV head " << h);
      auto e = make_engine(p, h, cache.options());
      // The engine's statistics, as a flash kernel would emit them: per query head, the column
      // sums over every row (score = colsum: every row is a recovery row) and the near sums.
      std::vector<head_stats> stats(static_cast<std::size_t>(e.group));
      for (std::int32_t qg = 0; qg < e.group; ++qg) {
        const auto a = engine_prompt_attention(p, h * e.group + qg, h, e.scale);
        const auto col = engine_column_sums(a, p.length, score_source{});
        std::vector<float> colf(col.begin(), col.end()), nearf;
        for (const auto w : windows) {
          const auto nw = engine_near_sums(a, p.length, w);
          nearf.insert(nearf.end(), nw.begin(), nw.end());
        }
        stats[static_cast<std::size_t>(qg)].assign(0, windows, colf, colf, nearf);
      }
      const auto& plan = planner.plan(lad, recovery_profiler(threshold),
                                      std::span<const head_stats>(stats), group_reduce::mean,
                                      p.classes, 0, head_context{0, 0, h, 1, 4, p.length});
      REQUIRE(plan.choice == tr.choices[static_cast<std::size_t>(h)]);
      rungs.insert(plan.choice);
      e.load(e.stepper.prefill(plan, p.classes));
      compare_decode(e, p, tr, [&](auto&& fn) { lad.visit(plan.choice, fn); }, false);
    }
  }
  CHECK(rungs.size() >= 2); // the heads did not all take one rung
}

TEST_CASE("per-head budgets from a layer-wide profiler (Ada-KV) through prefill's budget",
          "[stepper]") {
  const auto p = make_problem(48, 8, 4, 16, 40, 131);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 4, .head_dim = 16,
                         .page_size = 8};
  const h2o pol(8, 6);
  adaptive_cache cache(ladder<h2o>(pol), adakv_profiler(8, 0.25), g, {.n_head_q = 8});
  const auto tr = run_cache(cache, p);
  std::set<std::int32_t> budgets;
  for (std::int32_t h = 0; h < 4; ++h) {
    INFO("KV head " << h);
    const std::int32_t budget = cache.fixed_budget({0, 0, h});
    REQUIRE(budget >= 0);
    budgets.insert(budget);
    auto e = make_engine(p, h, cache.options());
    e.prefill(pol, budget);
    CHECK(e.stepper.fixed_budget() == budget);
    compare_decode(e, p, tr, [&](auto&& fn) { fn(pol); }, false);
  }
  CHECK(budgets.size() >= 2); // the heads got different budgets
}

TEST_CASE("finish_from_logits equals finish on the same attention", "[stepper]") {
  // Two engines on one problem: one hands the stepper probabilities, the other logits and lse;
  // both are checked against adaptive_cache, so they agree step by step.
  SECTION("tova") { check_policy(tova(12), {}, 4, 2, 121, true); }
  SECTION("fastgen hybrid, worst-case group") {
    check_policy(fastgen_policy(), {.group = group_reduce::worst}, 4, 2, 122, true);
  }
  SECTION("scores agree") {
    const auto p = make_problem(32, 4, 1, 8, 20, 123);
    auto a = make_engine(p, 0, {});
    auto b = make_engine(p, 0, {});
    const h2o pol(5, 4);
    a.prefill(pol);
    b.prefill(pol);
    for (std::size_t s = 0; s < 20; ++s) {
      a.step(pol, s, false);
      b.step(pol, s, true);
      REQUIRE(a.stepper.size() == b.stepper.size());
      for (std::int32_t i = 0; i < a.stepper.size(); ++i) {
        REQUIRE(a.stepper.position(i) == b.stepper.position(i));
        REQUIRE(a.stepper.reason(i) == b.stepper.reason(i));
        REQUIRE(a.stepper.score(i) == Approx(b.stepper.score(i)).margin(1e-5));
      }
    }
  }
}

using kvsieve::testing::expect_error;

TEST_CASE("head_stepper rejects misuse and stays usable", "[stepper][errors]") {
  const std::vector<token_class> classes{token_class::special, token_class::none,
                                         token_class::punctuation, token_class::none};
  const std::vector<double> scores{0.5, 0.25, 0.5, 1.0};
  const h2o pol(1, 1);
  head_stepper st;
  expect_error([&] { st.begin(pol, token_class::none); }, errc::bad_state, "before prefill");
  expect_error([&] { st.prefill(pol, std::span<const token_class>(), std::span<const double>()); },
               errc::invalid_argument, "empty prompt");
  expect_error([&] { st.prefill(pol, classes, std::span<const double>(scores).first(3)); },
               errc::shape_mismatch, "3 scores for 4 tokens");
  expect_error([&] { st.prefill(special{}, classes, scores, 2); }, errc::invalid_argument,
               "which has none");
  expect_error([&] { st.prefill(pol, classes, scores, -2); }, errc::invalid_argument, "budget");
  expect_error([] { head_stepper bad({.n_sinks = -1}); }, errc::invalid_argument, "n_sinks");
  // Policies without a budget need no scores.
  head_stepper plain;
  CHECK(plain.prefill(special{}, classes, std::span<const double>()).size() == 1);

  // h2o(1, 1) on 4 tokens: the window keeps 3, the budget the best of 0..2 (0 and 2 tie at 0.5:
  // the newer stays).
  const auto kept = st.prefill(pol, classes, scores);
  CHECK(std::vector<std::int32_t>(kept.begin(), kept.end()) == std::vector<std::int32_t>{2, 3});
  expect_error([&] { st.prefill(pol, classes, scores); }, errc::bad_state, "already prefilled");
  expect_error([&] { st.finish(pol, std::vector<float>{0.5F, 0.5F}); }, errc::bad_state,
               "finish without begin");
  CHECK(st.begin(pol, token_class::none) == 2);
  expect_error([&] { st.begin(pol, token_class::none); }, errc::bad_state, "begin called twice");
  expect_error([&] { st.finish(pol, std::vector<float>{0.5F, 0.5F}); }, errc::shape_mismatch,
               "2 probabilities for 3 resident tokens");
  expect_error(
      [&] {
        st.finish_from_logits(pol, std::vector<float>(5, 0.0F), std::vector<float>{1.0F},
                              group_reduce::mean);
      },
      errc::shape_mismatch, "5 logits");
  expect_error(
      [&] {
        st.finish_from_logits(pol, std::vector<float>(), std::vector<float>(),
                              group_reduce::mean);
      },
      errc::shape_mismatch, "group >= 1");
  expect_error([&] { (void)st.position(3); }, errc::out_of_range, "slot 3");
  // Nothing changed: the step still finishes. Position 3 leaves the window (w = 1) and joins the
  // budget; the budget keeps the stronger of 2 (0.5 + 0.1) and 3 (1.0 + 0.3); 4 is the window.
  CHECK(st.pending());
  const auto moves = st.finish(pol, std::vector<float>{0.1F, 0.3F, 0.6F});
  CHECK_FALSE(st.pending());
  CHECK(st.length() == 5);
  REQUIRE(moves.size() == 1);
  CHECK(moves[0] == slot_move{0, 2}); // position 2 left slot 0; position 4 moved there
  CHECK(std::vector<std::int32_t>(st.positions().begin(), st.positions().end()) ==
        std::vector<std::int32_t>{4, 3});
  CHECK(st.reason(0) == keep_reason::window);
  CHECK(st.reason(1) == keep_reason::budget);
  CHECK(st.score(1) == Approx(1.3F));
  st.reset();
  CHECK(st.size() == 0);
  CHECK(st.prefill(pol, classes, scores).size() == 2);
}

TEST_CASE("combine_column_sums: mean, max and pooling", "[stepper]") {
  const std::vector<double> sums{1.0, 2.0, 3.0, 4.0, /* second query head */ 3.0, 0.0, 1.0, 8.0};
  std::vector<double> out;
  combine_column_sums(sums, 2, group_reduce::mean, score_source{}, out);
  CHECK(out == std::vector<double>{2.0, 1.0, 2.0, 6.0});
  combine_column_sums(sums, 2, group_reduce::worst, score_source{}, out);
  CHECK(out == std::vector<double>{3.0, 2.0, 3.0, 8.0});
  // SnapKV-style: observation window of 1 row, max-pooled over 3 keys before it.
  combine_column_sums(sums, 2, group_reduce::worst, score_rule::observed(1, 3).source(), out);
  CHECK(out == std::vector<double>{3.0, 3.0, 3.0, 8.0});
  expect_error([&] { combine_column_sums(std::span<const double>(sums).first(7), 2,
                                         group_reduce::mean, score_source{}, out); },
               errc::shape_mismatch, "2 blocks");
}
