// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The profiler picks exactly the first candidate meeting T, on measurements and on hand-built
// attention patterns run through the whole cache.
#include <common/catch.hpp>

#include <cmath>
#include <vector>

#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;

auto scores(std::vector<double> rec) -> candidate_scores {
  candidate_scores s;
  s.kept.resize(rec.size());
  s.names.resize(rec.size());
  s.recovered = std::move(rec);
  return s;
}

// One head, MHA, head_dim 4: the choice the FastGen ladder makes for a prompt whose queries and
// keys are given by row functions.
template <class QK>
auto choose(std::int32_t length, QK qk, double threshold) -> std::string_view {
  constexpr std::size_t d = 4;
  const auto n = static_cast<std::size_t>(length);
  std::vector<float> q(n * d), k(n * d), v(n * d, 1.0F), out(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    qk(static_cast<std::int32_t>(i), q.data() + i * d, k.data() + i * d);
  }
  std::vector<token_class> cls(n, token_class::none);
  cls[0] = token_class::special;
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(threshold),
                       {.n_seq = 1, .n_layer = 1, .n_head_kv = 1, .head_dim = d});
  cache.prefill(0, 0, {q.data(), {n, 1, d}}, {k.data(), {n, 1, d}}, {v.data(), {n, 1, d}}, cls,
                {out.data(), {n, 1, d}});
  return fastgen_ladder::name(cache.choice({0, 0, 0}));
}
} // namespace

TEST_CASE("the first candidate whose recovery reaches T is chosen", "[profile]") {
  const recovery_profiler p(0.9);
  CHECK(p(scores({0.5, 0.89, 0.9, 0.99, 1.0})) == 2);
  CHECK(p(scores({0.95, 0.96, 0.97, 0.98, 1.0})) == 0);
  CHECK(p(scores({0.1, 0.2, 0.3, 0.4, 1.0})) == 4);
  CHECK(p(scores({0.1, 0.2})) == 1); // nothing qualifies: the last (most permissive) candidate
  CHECK(recovery_profiler(1.0)(scores({0.5, 1.0 - 1e-15})) == 1);
  CHECK(recovery_profiler(1.0)(scores({0.999, 0.9999, 1.0})) == 2);
}

TEST_CASE("a head that attends only to BOS gets special", "[profile][patterns]") {
  const auto choice = choose(64, [](std::int32_t i, float* q, float* k) {
    q[0] = 10.0F;
    k[0] = i == 0 ? 10.0F : 0.0F;
  }, 0.95);
  CHECK(choice == "special");
}

TEST_CASE("a strictly local head gets the local hybrid", "[profile][patterns]") {
  // q_i . k_j = 400 cos(0.02 (i - j)) peaks at j = i and falls off within a few tokens.
  const auto choice = choose(100, [](std::int32_t i, float* q, float* k) {
    const float a = 0.02F * static_cast<float>(i);
    q[0] = k[0] = 20.0F * std::cos(a);
    q[1] = k[1] = 20.0F * std::sin(a);
  }, 0.95);
  CHECK(choice == "special+punctuation+frequent+local");
}

TEST_CASE("a uniform head gets full", "[profile][patterns]") {
  const auto choice = choose(100, [](std::int32_t, float* q, float* k) {
    q[0] = 0.0F;
    k[0] = 1.0F;
  }, 0.95);
  CHECK(choice == "full");
}

TEST_CASE("a head that attends to BOS and punctuation gets special+punctuation",
          "[profile][patterns]") {
  constexpr std::size_t n = 60, d = 4;
  std::vector<float> q(n * d, 0.0F), k(n * d, 0.0F), v(n * d, 1.0F), out(n * d);
  std::vector<token_class> cls(n, token_class::none);
  cls[0] = token_class::special;
  for (std::size_t i = 0; i < n; ++i) {
    q[i * d] = 10.0F;
    if (i % 6 == 3) {
      cls[i] = token_class::punctuation;
    }
    k[i * d] = (i == 0 || cls[i] == token_class::punctuation) ? 10.0F : 0.0F;
  }
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(0.95),
                       {.n_seq = 1, .n_layer = 1, .n_head_kv = 1, .head_dim = d});
  cache.prefill(0, 0, {q.data(), {n, 1, d}}, {k.data(), {n, 1, d}}, {v.data(), {n, 1, d}}, cls,
                {out.data(), {n, 1, d}});
  CHECK(fastgen_ladder::name(cache.choice({0, 0, 0})) == "special+punctuation");
  CHECK(cache.store().size({0, 0, 0}) == 11); // BOS + 10 punctuation tokens
}
