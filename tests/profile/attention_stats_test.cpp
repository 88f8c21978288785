// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The streaming statistics and the recovered mass of every candidate equal brute force over the
// materialised attention matrix (MHA and GQA, several lengths, mean and worst-case groups).
#include <common/catch.hpp>
#include <reference/brute_force.hpp>

#include <cmath>
#include <random>

#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;

struct prompt {
  std::int32_t length, hq, hkv, d;
  std::vector<float> q, k, v;
  std::vector<token_class> classes;
};

auto make_prompt(std::int32_t length, std::int32_t hq, std::int32_t hkv, std::int32_t d,
                 std::uint32_t seed) -> prompt {
  std::mt19937 rng(seed);
  const auto n = static_cast<std::size_t>(length);
  prompt p{length, hq, hkv, d,
           reference::random_vector(n * static_cast<std::size_t>(hq * d), rng, 1.5F),
           reference::random_vector(n * static_cast<std::size_t>(hkv * d), rng),
           reference::random_vector(n * static_cast<std::size_t>(hkv * d), rng),
           std::vector<token_class>(n, token_class::none)};
  std::bernoulli_distribution punct(0.2);
  for (std::size_t j = 0; j < n; ++j) {
    p.classes[j] = j == 0 ? token_class::special
                          : (punct(rng) ? token_class::punctuation : token_class::none);
  }
  return p;
}

// Streams every query head of KV head h through causal_attention + head_stats.
auto stream_stats(const prompt& p, std::int32_t h, std::int32_t first_row,
                  const std::vector<std::int32_t>& windows,
                  const std::vector<score_source>& sources = {}) -> std::vector<head_stats> {
  const std::int32_t group = p.hq / p.hkv;
  const auto d = static_cast<std::size_t>(p.d);
  std::vector<head_stats> out(static_cast<std::size_t>(group));
  std::vector<float> o(static_cast<std::size_t>(p.length) * d), scratch;
  for (std::int32_t g = 0; g < group; ++g) {
    auto& st = out[static_cast<std::size_t>(g)];
    st.reset(p.length, first_row, windows, sources);
    const auto qh = static_cast<std::size_t>(h * group + g);
    causal_attention({p.q.data() + qh * d, static_cast<std::size_t>(p.hq) * d},
                     {p.k.data() + static_cast<std::size_t>(h) * d, static_cast<std::size_t>(p.hkv) * d},
                     {p.v.data() + static_cast<std::size_t>(h) * d, static_cast<std::size_t>(p.hkv) * d},
                     o.data(), d, p.length, p.d, 1.0F / std::sqrt(static_cast<float>(p.d)),
                     scratch, [&](std::int32_t i, std::span<const float> row) {
                       st.accumulate_row(i, row);
                     });
  }
  return out;
}

auto rel(double a, double b) -> bool { return std::abs(a - b) <= 1e-5 * std::max(1.0, std::abs(b)); }
} // namespace

TEST_CASE("streamed column sums, window sums and scores equal the materialised matrix",
          "[profile][stats]") {
  for (const auto& [length, hq, hkv] : {std::tuple{1, 2, 2}, std::tuple{7, 2, 2},
                                        std::tuple{64, 4, 2}, std::tuple{130, 8, 2},
                                        std::tuple{90, 3, 1}}) {
    for (const std::int32_t first_row : {0, length / 2}) {
      const auto p = make_prompt(length, hq, hkv, 16, static_cast<std::uint32_t>(length * 7 + hq));
      const std::vector<std::int32_t> windows{1, 5, std::max(1, length / 3)};
      const double scale = 1.0 / 4.0;
      for (std::int32_t h = 0; h < hkv; ++h) {
        const auto stats = stream_stats(p, h, first_row, windows);
        for (std::int32_t g = 0; g < hq / hkv; ++g) {
          const auto a = reference::attention_matrix(p.q, p.k, length, hq, hkv, 16,
                                                     h * (hq / hkv) + g, h, scale);
          const auto& st = stats[static_cast<std::size_t>(g)];
          CHECK(st.rows() == length - first_row);
          const auto n = static_cast<std::size_t>(length);
          for (std::size_t j = 0; j < n; ++j) {
            double col = 0.0, score = 0.0;
            for (std::size_t i = j; i < n; ++i) {
              score += a[i * n + j];
              col += static_cast<std::int32_t>(i) >= first_row ? a[i * n + j] : 0.0;
            }
            REQUIRE(rel(st.score()[j], score));
            REQUIRE(rel(st.colsum()[j], col));
            for (const auto w : windows) {
              double near = 0.0;
              for (std::size_t i = j; i < n && i < j + static_cast<std::size_t>(w); ++i) {
                near += static_cast<std::int32_t>(i) >= first_row ? a[i * n + j] : 0.0;
              }
              REQUIRE(rel(st.near(w)[j], near));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("every FastGen candidate's recovered mass equals the masked brute-force sum",
          "[profile][recovery]") {
  for (const auto reduce : {group_reduce::mean, group_reduce::worst}) {
    for (const auto& [length, hq, hkv, sinks] :
         {std::tuple{12, 2, 2, 0}, std::tuple{64, 4, 2, 0}, std::tuple{101, 8, 2, 4},
          std::tuple{50, 4, 1, 2}}) {
      const auto p = make_prompt(length, hq, hkv, 16, static_cast<std::uint32_t>(length + hq));
      const auto ladder = make_fastgen_ladder();
      const auto windows = ladder_windows(ladder, length);
      const double scale = 0.25;
      for (std::int32_t h = 0; h < hkv; ++h) {
        const auto stats = stream_stats(p, h, 0, windows);
        std::vector<double> scores;
        combine_scores(stats, reduce, scores);
        candidate_scores measured;
        std::vector<keep_reason> reasons;
        std::vector<std::int32_t> scratch;
        measure_candidates(ladder, std::span<const head_stats>(stats), reduce, p.classes, scores,
                           sinks, reasons, scratch, measured);
        REQUIRE(measured.size() == 5);
        const std::int32_t group = hq / hkv;
        for (std::size_t c = 0; c < 5; ++c) {
          ladder.visit(c, [&](const auto& pol) {
            // brute scores from the matrices, naive keep set, masked sums
            std::vector<std::vector<double>> mats;
            std::vector<double> brute_scores(static_cast<std::size_t>(length),
                                             reduce == group_reduce::mean ? 0.0 : -1.0);
            for (std::int32_t g = 0; g < group; ++g) {
              mats.push_back(reference::attention_matrix(p.q, p.k, length, hq, hkv, 16,
                                                         h * group + g, h, scale));
              for (std::size_t j = 0; j < static_cast<std::size_t>(length); ++j) {
                double col = 0.0;
                for (std::size_t i = j; i < static_cast<std::size_t>(length); ++i) {
                  col += mats.back()[i * static_cast<std::size_t>(length) + j];
                }
                brute_scores[j] = reduce == group_reduce::mean ? brute_scores[j] + col / group
                                                               : std::max(brute_scores[j], col);
              }
            }
            const auto keep = reference::naive_keep(pol, p.classes, brute_scores, sinks);
            std::vector<bool> kept_static(keep.size());
            std::int32_t kept = 0;
            for (std::size_t j = 0; j < keep.size(); ++j) {
              kept_static[j] = keep[j] == keep_reason::rule || keep[j] == keep_reason::budget;
              kept += keep[j] != keep_reason::evicted ? 1 : 0;
            }
            const std::int32_t w = std::min(window_of(pol, {length, length}), length);
            double expect = reduce == group_reduce::mean ? 0.0 : 1.0;
            for (const auto& a : mats) {
              const double r = reference::recovered_mass(a, length, kept_static, w);
              expect = reduce == group_reduce::mean ? expect + r / group : std::min(expect, r);
            }
            INFO("candidate " << c << " L " << length << " group " << group);
            CHECK(measured.kept[c] == kept);
            CHECK(rel(measured.recovered[c], expect));
          });
        }
        // Eq. 2 ladder: cost and recovery rise along the ladder, full recovers everything.
        for (std::size_t c = 1; c < 5; ++c) {
          CHECK(measured.kept[c] >= measured.kept[c - 1]);
          CHECK(measured.recovered[c] >= measured.recovered[c - 1] - 1e-12);
        }
        CHECK(measured.recovered[4] == Approx(1.0).margin(1e-9));
      }
    }
  }
}

TEST_CASE("recovery over the last k rows only uses those rows", "[profile][recovery]") {
  const auto p = make_prompt(80, 2, 2, 16, 5);
  const std::int32_t first = 80 - 16;
  const auto stats = stream_stats(p, 0, first, {24});
  const auto a = reference::attention_matrix(p.q, p.k, 80, 2, 2, 16, 0, 0, 0.25);
  std::vector<keep_reason> reasons(80, keep_reason::evicted);
  std::vector<bool> kept(80, false);
  reasons[0] = keep_reason::rule;
  kept[0] = true;
  reasons[33] = keep_reason::budget;
  kept[33] = true;
  CHECK(rel(stats[0].recovered(reasons, 24), reference::recovered_mass(a, 80, kept, 24, first)));
  CHECK(rel(stats[0].recovered(reasons, 0), reference::recovered_mass(a, 80, kept, 0, first)));
}

TEST_CASE("assign() of streamed sums reproduces the streamed statistics", "[profile][assign]") {
  const auto p = make_prompt(50, 2, 1, 8, 9);
  const std::vector<std::int32_t> windows{3, 11};
  const auto stats = stream_stats(p, 0, 20, windows);
  const auto& s = stats[1];
  std::vector<float> score(s.score().begin(), s.score().end());
  std::vector<float> colsum(s.colsum().begin(), s.colsum().end());
  std::vector<float> near;
  for (const auto w : windows) {
    near.insert(near.end(), s.near(w).begin(), s.near(w).end());
  }
  head_stats copy;
  copy.assign(20, windows, score, colsum, near);
  CHECK(copy.length() == 50);
  CHECK(copy.rows() == 30);
  std::vector<keep_reason> reasons(50, keep_reason::evicted);
  reasons[0] = keep_reason::rule;
  reasons[7] = keep_reason::budget;
  for (const auto w : {0, 3, 11}) {
    CHECK(rel(copy.recovered(reasons, w), s.recovered(reasons, w)));
  }
  CHECK(copy.near(11)[40] == Approx(s.near(11)[40]).epsilon(1e-6));
  CHECK_THROWS_AS(copy.assign(0, windows, score, colsum, std::span<const float>(near).first(10)),
                  kvsieve::error);
}

TEST_CASE("assign() of streamed source sums reproduces every source's scores",
          "[profile][assign][tova][snapkv]") {
  // What the CUDA prefill hands the planner: the sums under each score source, [sources][L].
  const auto p = make_prompt(40, 2, 1, 8, 5);
  const std::vector<score_source> sources{score_rule::latest().source(),
                                          score_rule::decayed(0.95F).source(),
                                          score_rule::observed(6, 5, score_pool::max).source()};
  const std::vector<std::int32_t> windows{4};
  const auto stats = stream_stats(p, 0, 0, windows, sources);
  const auto& s = stats[0];
  std::vector<float> score(s.score().begin(), s.score().end());
  std::vector<float> colsum(s.colsum().begin(), s.colsum().end());
  std::vector<float> near(s.near(4).begin(), s.near(4).end());
  std::vector<float> sourced;
  for (const auto& src : sources) {
    sourced.insert(sourced.end(), s.score(src).begin(), s.score(src).end());
  }
  head_stats copy;
  copy.assign(0, windows, score, colsum, near, sources, sourced);
  for (const auto& src : sources) {
    const auto want = s.score(src);
    const auto got = copy.score(src);
    REQUIRE(got.size() == want.size());
    for (std::size_t j = 0; j < want.size(); ++j) {
      CHECK(got[j] == Approx(want[j]).epsilon(1e-6));
    }
  }
  // Sources must be distinct and not plain; their sums must cover L per source.
  const std::vector<score_source> twice{sources[0], sources[0]};
  std::vector<float> two(sourced.begin(), sourced.begin() + 80);
  CHECK_THROWS_AS(copy.assign(0, windows, score, colsum, near, twice, two), kvsieve::error);
  CHECK_THROWS_AS(copy.assign(0, windows, score, colsum, near, sources,
                              std::span<const float>(sourced).first(50)),
                  kvsieve::error);
}

TEST_CASE("score sources (last rows, decay, pooling) equal brute force over the matrix",
          "[tova][snapkv]") {
  const auto p = make_prompt(37, 4, 2, 8, 99);
  const std::vector<score_source> sources{
      score_rule::latest().source(), score_rule::decayed(0.9F).source(),
      score_rule::observed(6, 5, score_pool::max).source(),
      score_rule::observed(6, 3, score_pool::avg).source(), {0, 1.0F, score_pool::avg, 3}};
  const double scale = 1.0 / std::sqrt(8.0);
  for (std::int32_t h = 0; h < p.hkv; ++h) {
    const auto stats = stream_stats(p, h, 0, {}, sources);
    std::vector<std::vector<double>> a; // the group's mean matrix
    const auto n = static_cast<std::size_t>(p.length);
    std::vector<double> mean(n * n, 0.0);
    for (std::int32_t g = 0; g < 2; ++g) {
      const auto m = reference::attention_matrix(p.q, p.k, p.length, p.hq, p.hkv, p.d, h * 2 + g,
                                                 h, scale);
      for (std::size_t i = 0; i < m.size(); ++i) {
        mean[i] += m[i] / 2.0;
      }
    }
    for (const auto& src : sources) {
      std::vector<double> want(n, 0.0);
      for (std::size_t i = 0; i < n; ++i) {
        const bool in_rows = src.last_rows == 0 || i + static_cast<std::size_t>(src.last_rows) >= n;
        const double w = std::pow(static_cast<double>(src.decay), static_cast<double>(n - 1 - i));
        for (std::size_t j = 0; in_rows && j <= i; ++j) {
          want[j] += w * mean[i * n + j];
        }
      }
      // Pool over the keys before the observation window (or all), zero-padded, by hand.
      const std::size_t end = src.last_rows > 0 ? n - static_cast<std::size_t>(src.last_rows) : n;
      std::vector<double> pooled = want;
      const auto half = static_cast<std::ptrdiff_t>(src.kernel / 2);
      for (std::size_t j = 0; src.pool != score_pool::none && j < end; ++j) {
        double acc = src.pool == score_pool::max ? -1.0 : 0.0;
        for (std::ptrdiff_t m = static_cast<std::ptrdiff_t>(j) - half;
             m <= static_cast<std::ptrdiff_t>(j) + half; ++m) {
          if (m >= 0 && m < static_cast<std::ptrdiff_t>(end)) {
            const double x = want[static_cast<std::size_t>(m)];
            acc = src.pool == score_pool::max ? std::max(acc, x) : acc + x;
          }
        }
        pooled[j] = src.pool == score_pool::max ? acc : acc / src.kernel;
      }
      std::vector<double> got, scratch;
      combine_scores(stats, group_reduce::mean, src, got, scratch);
      REQUIRE(got.size() == n);
      for (std::size_t j = 0; j < n; ++j) {
        INFO("source rows " << src.last_rows << " decay " << src.decay << " token " << j);
        CHECK(rel(got[j], pooled[j]));
      }
    }
  }
  head_stats st;
  CHECK_THROWS_AS(st.reset(4, 0, {}, std::vector<score_source>{{0, 1.0F, score_pool::max, 2}}),
                  error);
  CHECK_THROWS_AS(st.reset(4, 0, {}, std::vector<score_source>{{-1, 1.0F, score_pool::none, 1}}),
                  error);
  st.reset(4, 0, {});
  CHECK_THROWS_AS(st.score(score_rule::latest().source()), error); // not accumulated
}

TEST_CASE("score_rule: update and key as the ranking table says", "[tova]") {
  static_assert(score_rule(score_mode::cumulative).update(1.0F, 0.25F) == 1.25F);
  static_assert(score_rule::latest().update(1.0F, 0.25F) == 0.25F);
  static_assert(score_rule::decayed(0.5F).update(1.0F, 0.25F) == 0.75F);
  static_assert(score_rule(score_mode::mean).key(3.0, 2, 5) == 1.0);
  static_assert(score_rule::latest().source().last_rows == 1);
  static_assert(score_rule::observed(8, 7, score_pool::avg).source().kernel == 7);
  static_assert(score_rule{}.source().is_plain());
  CHECK(to_string(score_mode::latest) == "latest");
}
