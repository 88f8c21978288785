// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// Batch selection by hand-checked cases and against the naive reference; hybrid and ladder
// composition; ratio arithmetic.
#include <common/catch.hpp>
#include <reference/brute_force.hpp>

#include <random>

#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;
using namespace kvsieve::policies;
constexpr auto N = token_class::none;
constexpr auto S = token_class::special;
constexpr auto P = token_class::punctuation;

template <class Pol>
auto select(const Pol& p, const std::vector<token_class>& cls, const std::vector<double>& scores,
            std::int32_t sinks = 0) -> std::vector<keep_reason> {
  std::vector<keep_reason> out(cls.size());
  std::vector<std::int32_t> scratch;
  select_kept(p, std::span<const token_class>(cls), std::span<const double>(scores), sinks,
              std::span(out), scratch);
  return out;
}
} // namespace

TEST_CASE("ratios are ceilings that survive binary rounding", "[policy]") {
  CHECK(ratio_count(0.3, 10) == 3);   // 0.3 * 10 = 3.0000000000000004
  CHECK(ratio_count(0.3, 11) == 4);
  CHECK(ratio_count(0.29, 100) == 29); // 28.999999999999996
  CHECK(ratio_count(0.7, 10) == 7);
  CHECK(ratio_count(0.0, 1000) == 0);
  CHECK(ratio_count(1.0, 17) == 17);
  CHECK(local(0.3).window({.length = 14, .prompt_length = 10}) == 5);
  CHECK(local(0.3, length_base::prompt).window({.length = 14, .prompt_length = 10}) == 3);
  CHECK(frequent(0.3).budget({.length = 21, .prompt_length = 10}) == 7);
}

TEST_CASE("hand-checked keep sets on a 10-token prompt", "[policy][select]") {
  //                                0  1  2  3  4  5  6  7  8  9
  const std::vector<token_class> c{S, N, N, P, N, N, P, N, N, N};
  const std::vector<double> sc{5, 0.4, 0.9, 1, 0.2, 0.9, 1, 0.1, 0.1, 0.1};
  using R = keep_reason;
  constexpr auto E = R::evicted;
  CHECK(select(special{}, c, sc) == std::vector<R>{R::rule, E, E, E, E, E, E, E, E, E});
  CHECK(select(special_punct{}, c, sc) ==
        std::vector<R>{R::rule, E, E, R::rule, E, E, R::rule, E, E, E});
  CHECK(select(local(0.3), c, sc) ==
        std::vector<R>{E, E, E, E, E, E, E, R::window, R::window, R::window});
  // budget ceil(0.3 * 10) = 3 among {1, 2, 4, 5, 7, 8, 9}: 2 and 5 tie at 0.9 (both stay),
  // then 1 (0.4).
  CHECK(select(special_punct_frequent{}, c, sc) ==
        std::vector<R>{R::rule, R::budget, R::budget, R::rule, E, R::budget, R::rule, E, E, E});
  // with the window {7, 8, 9} the budget ranks {1, 2, 4, 5}: keeps 2, 5, 1
  CHECK(select(special_punct_frequent_local{}, c, sc) ==
        std::vector<R>{R::rule, R::budget, R::budget, R::rule, E, R::budget, R::rule, R::window,
                       R::window, R::window});
  // a tie at the budget's edge: the older token leaves first
  const std::vector<double> tie{0, 1, 1, 1, 1, 0, 0, 0, 0, 0};
  CHECK(select(frequent(0.2), std::vector<token_class>(10, N), tie) ==
        std::vector<R>{E, E, E, R::budget, R::budget, E, E, E, E, E});
  // sinks are kept by every candidate
  CHECK(select(local(0.1), c, sc, 2) == std::vector<R>{R::rule, R::rule, E, E, E, E, E, E, E, R::window});
  CHECK(select(full{}, c, sc) == std::vector<R>(10, R::rule));
}

TEST_CASE("mean-normalised ranking divides by the queries that saw the token", "[policy][select]") {
  // t = 10: token 1 was seen by 9 queries, token 8 by 2.
  const std::vector<token_class> c(10, N);
  std::vector<double> sc(10, 0.0);
  sc[1] = 1.0; // mean 1/9
  sc[8] = 0.5; // mean 1/4
  const auto cum = select(frequent(0.1), c, sc);
  const auto mean = select(frequent(0.1, length_base::current, score_mode::mean), c, sc);
  CHECK(cum[1] == keep_reason::budget);
  CHECK(mean[8] == keep_reason::budget);
  CHECK(mean[1] == keep_reason::evicted);
}

TEST_CASE("select_kept equals the naive full-sort reference on random prompts", "[policy][select]") {
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 200; ++trial) {
    const auto n = static_cast<std::size_t>(1 + trial % 70);
    std::vector<token_class> c(n);
    std::vector<double> sc(n);
    for (std::size_t j = 0; j < n; ++j) {
      const double x = u(rng);
      c[j] = x < 0.05 ? S : (x < 0.25 ? P : N);
      sc[j] = std::floor(u(rng) * 8.0) / 8.0; // coarse scores: many ties
    }
    const auto sinks = static_cast<std::int32_t>(trial % 3);
    const special_punct_frequent_local pol({}, {}, frequent(u(rng)), local(u(rng)));
    CHECK(select(pol, c, sc, sinks) == reference::naive_keep(pol, c, sc, sinks));
    const local_frequent lf(local(u(rng)), frequent(u(rng), length_base::current, score_mode::mean));
    CHECK(select(lf, c, sc, sinks) == reference::naive_keep(lf, c, sc, sinks));
  }
}

TEST_CASE("hybrids are unions in the normal form", "[policy][hybrid]") {
  const hybrid<special, punctuation, frequent, local> h({}, {}, frequent(0.2), local(0.4));
  STATIC_REQUIRE(decltype(h)::name == "special+punctuation+frequent+local");
  STATIC_REQUIRE(uses_scores<decltype(h)>);
  STATIC_REQUIRE(!uses_scores<special_punct>);
  const step_context ctx{100, 50};
  CHECK(h.keeps({3, S}, ctx));
  CHECK(h.keeps({3, P}, ctx));
  CHECK(!h.keeps({3, N}, ctx));
  CHECK(h.window(ctx) == 40);
  CHECK(h.budget(ctx) == 20);
  const hybrid<local, local> two(local(0.1), local(0.3));
  CHECK(two.window(ctx) == 30); // max of windows
  // The one budgeted member's budget and ranking (two budgets: compile_fail/hybrid_two_budgets).
  const hybrid<local, frequent> mean_ranked(local(0.1), frequent(0.2, length_base::current, score_mode::mean));
  CHECK(mean_ranked.budget(ctx) == 20);
  CHECK(mean_ranked.ranking() == score_rule(score_mode::mean));
  STATIC_REQUIRE(!has_budget<special_punct> && !has_ranking<special_punct>);
  const hybrid<special, hybrid<punctuation, sinks>> nested({}, hybrid<punctuation, sinks>({}, sinks(2)));
  STATIC_REQUIRE(decltype(nested)::name == "special+punctuation+sinks");
  CHECK(nested.keeps({1, N}, ctx));
  CHECK(!nested.keeps({2, N}, ctx));
}

TEST_CASE("the FastGen ladder is Eq. 2 in the paper's order and dispatches by index", "[policy][ladder]") {
  STATIC_REQUIRE(fastgen_ladder::size == 5);
  CHECK(fastgen_ladder::name(0) == "special");
  CHECK(fastgen_ladder::name(1) == "special+punctuation");
  CHECK(fastgen_ladder::name(2) == "special+punctuation+frequent");
  CHECK(fastgen_ladder::name(3) == "special+punctuation+frequent+local");
  CHECK(fastgen_ladder::name(4) == "full");
  const auto l = make_fastgen_ladder({.local_ratio = 0.2, .frequent_ratio = 0.1});
  std::vector<std::string_view> seen;
  for (std::size_t i = 0; i < 5; ++i) {
    l.visit(i, [&](const auto& p) { seen.push_back(std::remove_cvref_t<decltype(p)>::name); });
  }
  CHECK(seen == std::vector<std::string_view>{"special", "special+punctuation",
                                              "special+punctuation+frequent",
                                              "special+punctuation+frequent+local", "full"});
  l.visit(3, [](const auto& p) {
    CHECK(window_of(p, {100, 100}) == 20);
    CHECK(budget_of(p, {100, 100}) == 10);
  });
  CHECK_THROWS_AS(l.visit(5, [](const auto&) {}), kvsieve::error);
}
