// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// llama::sampler: greedy by hand, sampled frequencies against the nucleus distribution computed
// here from its definition, every edge a model's logits can reach (ties, -inf, NaN, +inf, all
// -inf, top_p = 1, tiny and huge temperatures), seeding, and find_non_finite.
#include <common/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <kvsieve/core/error.hpp>

#include <llama/sampler.hpp>

namespace {

constexpr float f_inf = std::numeric_limits<float>::infinity();
constexpr float f_nan = std::numeric_limits<float>::quiet_NaN();

// The nucleus distribution by its definition: softmax(logits / t), the most probable tokens
// (ties: lower id first) until their mass reaches top_p, renormalised; 0 elsewhere.
auto nucleus(const std::vector<float>& logits, double t, double top_p) -> std::vector<double> {
  const double m = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  for (std::size_t i = 0; i < p.size(); ++i) {
    p[i] = std::exp((logits[i] - m) / t);
  }
  const double sum = std::accumulate(p.begin(), p.end(), 0.0);
  std::vector<std::size_t> order(p.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return p[a] > p[b]; });
  std::vector<double> q(p.size(), 0.0);
  double mass = 0.0;
  for (const std::size_t i : order) {
    if (p[i] == 0.0 || (mass >= top_p * sum && mass > 0.0)) {
      break;
    }
    q[i] = p[i];
    mass += p[i];
  }
  for (auto& x : q) {
    x /= mass;
  }
  return q;
}

// Draws n tokens and checks each frequency is within 5 standard deviations of `expect` (and
// exactly 0 where expect is 0).
void check_frequencies(llama::sampler& s, const std::vector<float>& logits,
                       const std::vector<double>& expect, int n) {
  std::vector<int> count(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    const auto id = s(logits);
    REQUIRE(id >= 0);
    REQUIRE(static_cast<std::size_t>(id) < logits.size());
    ++count[static_cast<std::size_t>(id)];
  }
  for (std::size_t i = 0; i < logits.size(); ++i) {
    INFO("token " << i << ": " << count[i] << " of " << n << ", expected p = " << expect[i]);
    if (expect[i] == 0.0) {
      CHECK(count[i] == 0);
    } else {
      const double sd = std::sqrt(n * expect[i] * (1.0 - expect[i]));
      CHECK(std::abs(count[i] - n * expect[i]) <= 5.0 * sd + 1.0);
    }
  }
}

template <class F>
void check_rejects(F&& f) {
  try {
    f();
    FAIL("no error");
  } catch (const kvsieve::error& e) {
    CHECK(e.code() == kvsieve::errc::invalid_argument);
  }
}

} // namespace

TEST_CASE("greedy takes the largest logit, the lowest id among ties", "[llama][sampler]") {
  llama::sampler greedy(0.0F, 0.9F, 1);
  CHECK(greedy(std::vector<float>{0.5F, 2.0F, -1.0F}) == 1);
  CHECK(greedy(std::vector<float>{3.0F, 1.0F, 3.0F}) == 0);
  CHECK(greedy(std::vector<float>{-f_inf, -f_inf, -5.0F, -f_inf}) == 2);
  CHECK(greedy(std::vector<float>{-f_inf, 7.0F, 7.0F}) == 1);
  CHECK(greedy(std::vector<float>{std::numeric_limits<float>::lowest()}) == 0);
}

TEST_CASE("sampling follows the nucleus distribution", "[llama][sampler]") {
  const std::vector<float> logits{std::log(0.5F), std::log(0.25F), std::log(0.125F),
                                  std::log(0.125F)};
  for (const float top_p : {1.0F, 0.9F, 0.7F, 0.5F, 0.1F}) {
    for (const float t : {1.0F, 0.6F, 2.5F}) {
      INFO("top_p " << top_p << ", temperature " << t);
      llama::sampler s(t, top_p, 11);
      check_frequencies(s, logits, nucleus(logits, t, top_p), 20000);
    }
  }
}

TEST_CASE("a -inf logit is never drawn, whatever the temperature and top_p",
          "[llama][sampler]") {
  std::vector<float> logits(64);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0F, 2.0F);
  for (auto& x : logits) {
    x = normal(rng);
  }
  for (std::size_t i = 0; i < logits.size(); i += 3) {
    logits[i] = -f_inf;
  }
  for (const float t : {1e-30F, 0.6F, 1.0F, 1e30F, std::numeric_limits<float>::max()}) {
    llama::sampler s(t, 1.0F, 5);
    for (int i = 0; i < 3000; ++i) {
      const auto id = s(logits);
      REQUIRE(id >= 0);
      REQUIRE(id < 64);
      REQUIRE(std::isfinite(logits[static_cast<std::size_t>(id)]));
    }
  }
}

TEST_CASE("a tiny temperature is greedy, a huge one uniform over the finite logits",
          "[llama][sampler]") {
  const std::vector<float> logits{1.0F, 4.0F, -f_inf, 3.5F, 0.0F};
  llama::sampler tiny(1e-30F, 1.0F, 2);
  for (int i = 0; i < 500; ++i) {
    REQUIRE(tiny(logits) == 1);
  }
  llama::sampler huge(1e30F, 1.0F, 2);
  check_frequencies(huge, logits, {0.25, 0.25, 0.0, 0.25, 0.25}, 20000);
  // Tied maxima at a tiny temperature: each has p = 1, the others underflow to 0.
  llama::sampler tied(1e-30F, 1.0F, 4);
  check_frequencies(tied, {2.0F, 5.0F, 5.0F, -1.0F}, {0.0, 0.5, 0.5, 0.0}, 4000);
}

TEST_CASE("a tiny top_p keeps only the most probable token", "[llama][sampler]") {
  llama::sampler s(1.0F, 1e-6F, 9);
  for (int i = 0; i < 500; ++i) {
    REQUIRE(s(std::vector<float>{0.0F, 2.0F, 2.0F, 1.0F}) == 1); // ties: the lower id
  }
}

TEST_CASE("NaN, +inf, all -inf or no logits are errors, never sampled", "[llama][sampler]") {
  for (const float t : {0.0F, 0.6F}) {
    llama::sampler s(t, 0.9F, 1);
    check_rejects([&] { return s(std::vector<float>{}); });
    check_rejects([&] { return s(std::vector<float>{f_nan, 1.0F}); });
    check_rejects([&] { return s(std::vector<float>{1.0F, f_nan}); });
    check_rejects([&] { return s(std::vector<float>{f_nan, f_nan, f_nan}); });
    check_rejects([&] { return s(std::vector<float>{0.0F, f_inf}); });
    check_rejects([&] { return s(std::vector<float>{-f_inf, -f_inf}); });
    check_rejects([&] { return s(std::vector<float>{-f_inf}); });
  }
}

TEST_CASE("the sampler's settings are checked", "[llama][sampler]") {
  check_rejects([] { return llama::sampler(-0.1F, 0.9F, 1); });
  check_rejects([] { return llama::sampler(f_nan, 0.9F, 1); });
  check_rejects([] { return llama::sampler(f_inf, 0.9F, 1); });
  check_rejects([] { return llama::sampler(0.6F, 0.0F, 1); });
  check_rejects([] { return llama::sampler(0.6F, 1.01F, 1); });
  check_rejects([] { return llama::sampler(0.6F, f_nan, 1); });
}

TEST_CASE("one seed gives one sequence of tokens, another seed another", "[llama][sampler]") {
  std::vector<float> logits(300);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0F, 1.0F);
  for (auto& x : logits) {
    x = normal(rng);
  }
  const auto draw = [&](std::uint64_t seed) {
    llama::sampler s(0.8F, 0.95F, seed);
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 50; ++i) {
      ids.push_back(s(logits));
    }
    return ids;
  };
  CHECK(draw(7) == draw(7));
  CHECK(draw(7) != draw(8));
  CHECK(draw(std::numeric_limits<std::uint64_t>::max()) ==
        draw(std::numeric_limits<std::uint64_t>::max()));
}

TEST_CASE("find_non_finite counts NaN and infinities and finds the first", "[llama][sampler]") {
  CHECK_FALSE(llama::find_non_finite(std::vector<float>{0.0F, -3.0F, 1e38F}).any());
  CHECK_FALSE(llama::find_non_finite(std::vector<float>{}).any());
  const auto r =
      llama::find_non_finite(std::vector<float>{1.0F, -f_inf, f_nan, f_inf, f_nan, 2.0F});
  CHECK(r.any());
  CHECK(r.first == 1);
  CHECK(r.nan == 2);
  CHECK(r.pos_inf == 1);
  CHECK(r.neg_inf == 1);
}
