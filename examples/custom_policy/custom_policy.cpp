// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The smallest user policy: keep every token whose position is a multiple of 8, compose it with
// FastGen's local window into a hybrid, put both on a ladder, and run a cache with it.
// docs/policies.md walks through this file.
#include <cstdio>
#include <random>
#include <vector>

#include <kvsieve/kvsieve.hpp>

#include "every_8th.hpp"

// A TOVA-like policy (docs/policies.md, "Ranking"): the first token, plus a budget of a fifth of
// the tokens seen ranked by the current step's attention alone.
struct tova_fifth {
  static constexpr std::string_view name = "tova_fifth";
  [[nodiscard]] constexpr auto keeps(kvsieve::token_info tok, kvsieve::step_context) const
      -> bool {
    return tok.position == 0;
  }
  [[nodiscard]] constexpr auto budget(kvsieve::step_context ctx) const -> std::int32_t {
    return ctx.length / 5;
  }
  [[nodiscard]] constexpr auto ranking() const -> kvsieve::score_rule {
    return kvsieve::score_rule::latest();
  }
};
static_assert(kvsieve::policy<tova_fifth>);

auto main() -> int {
  constexpr int length = 256, n_head = 2, head_dim = 16, steps = 64;
  const kvsieve::store_geometry geometry{.n_seq = 1, .n_layer = 1, .n_head_kv = n_head,
                                         .head_dim = head_dim, .page_size = 16};
  // example-begin every_8th_cache
  kvsieve::adaptive_cache cache(
      every_8th_ladder(every_8th{}, every_8th_local(every_8th{}, kvsieve::policies::local(0.1)),
                kvsieve::policies::full{}),
      kvsieve::recovery_profiler(0.5), geometry);
  // example-end every_8th_cache

  // Attention that looks at nearby tokens: keys and queries on a slowly turning circle.
  std::vector<float> q(length * n_head * head_dim), k(q.size()), v(q.size()), out(q.size());
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0F, 1.0F);
  auto rotor = [](int pos, int c) {
    return c == 0 ? 25.0F * std::cos(0.01F * static_cast<float>(pos))
                  : (c == 1 ? 25.0F * std::sin(0.01F * static_cast<float>(pos)) : 0.0F);
  };
  for (int t = 0; t < length; ++t) {
    for (int h = 0; h < n_head; ++h) {
      for (int c = 0; c < head_dim; ++c) {
        const auto i = static_cast<std::size_t>((t * n_head + h) * head_dim + c);
        q[i] = rotor(t, c);
        k[i] = rotor(t, c);
        v[i] = noise(rng);
      }
    }
  }
  const std::vector<kvsieve::token_class> classes(length, kvsieve::token_class::none);
  const std::array<std::size_t, 3> shape{length, n_head, head_dim};
  cache.prefill(0, 0, {q.data(), shape}, {k.data(), shape}, {v.data(), shape}, classes,
                {out.data(), shape});
  std::vector<float> step(n_head * head_dim);
  for (int s = 0; s < steps; ++s) {
    for (auto& x : step) {
      x = noise(rng);
    }
    cache.decode(0, 0, {step.data(), {n_head, head_dim}}, {step.data(), {n_head, head_dim}},
                 {step.data(), {n_head, head_dim}}, kvsieve::token_class::none,
                 {out.data(), {n_head, head_dim}});
  }
  const auto report = cache.report();
  for (const auto& h : report.heads) {
    std::printf("head %d: %.*s, %d of %d tokens kept, %.3f of the prompt attention recovered\n",
                h.head.head, static_cast<int>(h.policy.size()), h.policy.data(), h.kept,
                h.length, h.recovered);
  }
  std::printf("KV memory saved: %.1f%%\n", 100.0 * report.saved_fraction());

  // The TOVA-like policy on the same prompt: it keeps the first token and t / 5 others.
  kvsieve::adaptive_cache tova_cache(kvsieve::ladder<tova_fifth>(), kvsieve::recovery_profiler(1.0),
                                     geometry);
  tova_cache.prefill(0, 0, {q.data(), shape}, {k.data(), shape}, {v.data(), shape}, classes,
                     {out.data(), shape});
  for (const auto& h : tova_cache.report().heads) {
    std::printf("tova_fifth head %d: %d of %d tokens kept\n", h.head.head, h.kept, h.length);
    if (h.kept != 1 + length / 5) {
      return 1;
    }
  }
  return 0;
}
