// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// A random prefill + decode problem, run through adaptive_cache with every step recorded, and
/// the per-head comparison against reference::naive_head.

#include <array>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include <cache/backend.hpp>
#include <common/catch.hpp>
#include <reference/brute_force.hpp>

#include <kvsieve/kvsieve.hpp>

namespace kvsieve::testing {

struct problem {
  std::int32_t length, hq, hkv, d, steps;
  std::vector<float> q, k, v;                     // [L, h, d]
  std::vector<token_class> classes;               // [L]
  std::vector<std::vector<float>> dq, dk, dv;     // per step: [hq*d], [hkv*d], [hkv*d]
  std::vector<token_class> dclasses;              // per step
};

/// BOS special at 0; about 15% punctuation; generated tokens: ~10% punctuation, ~2% special.
inline auto make_problem(std::int32_t length, std::int32_t hq, std::int32_t hkv, std::int32_t d,
                         std::int32_t steps, std::uint32_t seed) -> problem {
  std::mt19937 rng(seed);
  problem p{length, hq, hkv, d, steps, {}, {}, {}, {}, {}, {}, {}, {}};
  const auto n = static_cast<std::size_t>(length);
  p.q = reference::random_vector(n * static_cast<std::size_t>(hq * d), rng);
  p.k = reference::random_vector(n * static_cast<std::size_t>(hkv * d), rng);
  p.v = reference::random_vector(n * static_cast<std::size_t>(hkv * d), rng);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  p.classes.resize(n);
  for (std::size_t j = 0; j < n; ++j) {
    p.classes[j] = j == 0 ? token_class::special
                          : (u(rng) < 0.15 ? token_class::punctuation : token_class::none);
  }
  for (std::int32_t s = 0; s < steps; ++s) {
    p.dq.push_back(reference::random_vector(static_cast<std::size_t>(hq * d), rng));
    p.dk.push_back(reference::random_vector(static_cast<std::size_t>(hkv * d), rng));
    p.dv.push_back(reference::random_vector(static_cast<std::size_t>(hkv * d), rng));
    const double x = u(rng);
    p.dclasses.push_back(x < 0.02 ? token_class::special
                                  : (x < 0.12 ? token_class::punctuation : token_class::none));
  }
  return p;
}

/// A cache over `Store` (any host_kv_store; class template argument deduction would pick
/// paged_store<float>), so one test body runs over every store.
template <class Store, class Ladder, class Profiler>
auto make_cache(Ladder ladder, Profiler profiler, const store_geometry& g,
                const cache_options& options = {}) -> adaptive_cache<Ladder, Profiler, Store> {
  return adaptive_cache<Ladder, Profiler, Store>(std::move(ladder), std::move(profiler), g,
                                                 options);
}

/// What the cache did, per step (index 0 = after prefill) and per KV head.
struct trace {
  std::vector<float> prefill_out;                          // [L, hq, d]
  std::vector<std::vector<float>> outs;                    // per step [hq*d]
  std::vector<std::vector<std::vector<std::int32_t>>> pos; // [step][head] sorted positions
  std::vector<std::size_t> choices;                        // per head
  /// [step][head] (position, score) of the resident tokens, by position (record_scores only).
  std::vector<std::vector<std::vector<std::pair<std::int32_t, float>>>> scored;
};

/// Prefill then `p.steps` single-sequence decodes, every step recorded. The same calls for the
/// host and the device cache: tensors live in the cache's memory space (backend.hpp).
template <class Cache>
auto run_cache(Cache& cache, const problem& p, std::int32_t seq = 0, std::int32_t layer = 0,
               bool record_scores = false) -> trace {
  using space = typename Cache::memory_space;
  using mem = backend<space>;
  trace tr;
  const auto L = static_cast<std::size_t>(p.length);
  const auto hq = static_cast<std::size_t>(p.hq);
  const auto hkv = static_cast<std::size_t>(p.hkv);
  const auto d = static_cast<std::size_t>(p.d);
  const auto q = mem::upload(p.q);
  const auto k = mem::upload(p.k);
  const auto v = mem::upload(p.v);
  auto out = mem::zeros(L * hq * d);
  cache.prefill(seq, layer, cview_of<space, 3>(q, {L, hq, d}), cview_of<space, 3>(k, {L, hkv, d}),
                cview_of<space, 3>(v, {L, hkv, d}), p.classes, view_of<space, 3>(out, {L, hq, d}));
  tr.prefill_out = mem::download(out);
  auto snapshot = [&] {
    std::vector<std::vector<std::int32_t>> heads;
    std::vector<std::vector<std::pair<std::int32_t, float>>> scored;
    for (std::int32_t h = 0; h < p.hkv; ++h) {
      heads.push_back(mem::positions(cache, {seq, layer, h}));
      if (record_scores) {
        scored.push_back(mem::scores(cache, {seq, layer, h}));
      }
    }
    tr.pos.push_back(std::move(heads));
    if (record_scores) {
      tr.scored.push_back(std::move(scored));
    }
  };
  snapshot();
  for (std::int32_t h = 0; h < p.hkv; ++h) {
    tr.choices.push_back(cache.choice({seq, layer, h}));
  }
  auto dout = mem::zeros(hq * d);
  for (std::size_t s = 0; s < static_cast<std::size_t>(p.steps); ++s) {
    const auto dq = mem::upload(p.dq[s]);
    const auto dk = mem::upload(p.dk[s]);
    const auto dv = mem::upload(p.dv[s]);
    cache.decode(seq, layer, cview_of<space, 2>(dq, {hq, d}), cview_of<space, 2>(dk, {hkv, d}),
                 cview_of<space, 2>(dv, {hkv, d}), p.dclasses[s],
                 view_of<space, 2>(dout, {hq, d}));
    tr.outs.push_back(mem::download(dout));
    snapshot();
  }
  cache.synchronize();
  return tr;
}

/// The group's combined prompt scores of KV head h from the materialised attention.
inline auto brute_scores(const problem& p, std::int32_t h, group_reduce reduce, double scale)
    -> std::vector<double> {
  const std::int32_t group = p.hq / p.hkv;
  const auto n = static_cast<std::size_t>(p.length);
  std::vector<double> out(n, reduce == group_reduce::mean ? 0.0 : -1.0);
  for (std::int32_t g = 0; g < group; ++g) {
    const auto a = reference::attention_matrix(p.q, p.k, p.length, p.hq, p.hkv, p.d,
                                               h * group + g, h, scale);
    for (std::size_t j = 0; j < n; ++j) {
      double col = 0.0;
      for (std::size_t i = j; i < n; ++i) {
        col += a[i * n + j];
      }
      out[j] = reduce == group_reduce::mean ? out[j] + col / group : std::max(out[j], col);
    }
  }
  return out;
}

/// Replays KV head h of the problem through naive_head<P> and checks every step of the trace.
template <policy P>
void check_head_against_reference(const P& pol, const problem& p, const trace& tr,
                                  std::int32_t h, const cache_options& opt) {
  const std::int32_t group = p.hq / p.hkv;
  const auto d = static_cast<std::size_t>(p.d);
  const double scale = 1.0 / std::sqrt(static_cast<double>(p.d));
  reference::naive_head<P> ref(pol, group, p.d, scale, opt);
  std::vector<std::vector<float>> k, v;
  for (std::int32_t j = 0; j < p.length; ++j) {
    const auto off = (static_cast<std::size_t>(j) * static_cast<std::size_t>(p.hkv) +
                      static_cast<std::size_t>(h)) * d;
    k.emplace_back(p.k.begin() + static_cast<std::ptrdiff_t>(off),
                   p.k.begin() + static_cast<std::ptrdiff_t>(off + d));
    v.emplace_back(p.v.begin() + static_cast<std::ptrdiff_t>(off),
                   p.v.begin() + static_cast<std::ptrdiff_t>(off + d));
  }
  ref.prefill(k, v, p.classes, brute_scores(p, h, opt.group, scale));
  INFO("policy " << P::name << ", KV head " << h);
  REQUIRE(tr.pos[0][static_cast<std::size_t>(h)] == ref.positions());
  for (std::size_t s = 0; s < static_cast<std::size_t>(p.steps); ++s) {
    const auto hd = static_cast<std::size_t>(h) * d;
    std::vector<float> q(p.dq[s].begin() + static_cast<std::ptrdiff_t>(hd * static_cast<std::size_t>(group)),
                         p.dq[s].begin() + static_cast<std::ptrdiff_t>((hd + d) * static_cast<std::size_t>(group)));
    std::vector<float> kk(p.dk[s].begin() + static_cast<std::ptrdiff_t>(hd),
                          p.dk[s].begin() + static_cast<std::ptrdiff_t>(hd + d));
    std::vector<float> vv(p.dv[s].begin() + static_cast<std::ptrdiff_t>(hd),
                          p.dv[s].begin() + static_cast<std::ptrdiff_t>(hd + d));
    const auto expect = ref.decode(q, kk, vv, p.dclasses[s]);
    INFO("decode step " << s);
    for (std::size_t c = 0; c < expect.size(); ++c) {
      REQUIRE(tr.outs[s][hd * static_cast<std::size_t>(group) + c] ==
              Approx(expect[c]).margin(2e-4));
    }
    REQUIRE(tr.pos[s + 1][static_cast<std::size_t>(h)] == ref.positions());
  }
}

} // namespace kvsieve::testing
