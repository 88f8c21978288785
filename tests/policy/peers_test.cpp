// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The field's policies (policy/peers.hpp, profile/budget_profilers.hpp) through adaptive_cache,
// against brute-force references written from each paper's definition (reference/peers.hpp):
// the kept positions after prefill and after every decode step, and every decode output.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

#include <common/catch.hpp>
#include <reference/peers.hpp>

#include <kvsieve/kvsieve.hpp>

namespace {

using namespace kvsieve;
using namespace kvsieve::policies;
namespace ref = kvsieve::reference::peers;

constexpr std::int32_t head_dim = 8;
const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));

/// A layers x KV heads problem, one reference::peers::head_data per (layer, head).
struct problem {
  std::int32_t layers, heads, group, length, steps;
  std::vector<ref::head_data> data; // [layer * heads + head]
  [[nodiscard]] auto at(std::int32_t l, std::int32_t h) const -> const ref::head_data& {
    return data[static_cast<std::size_t>(l * heads + h)];
  }
};

auto make(std::int32_t layers, std::int32_t heads, std::int32_t group, std::int32_t length,
          std::int32_t steps, std::uint32_t seed) -> problem {
  std::mt19937 rng(seed);
  problem p{layers, heads, group, length, steps, {}};
  for (std::int32_t i = 0; i < layers * heads; ++i) {
    p.data.push_back(ref::make_head(length, group, head_dim, steps, rng));
  }
  return p;
}

/// What a run did: positions[step][layer * heads + head] (step 0: after prefill), and the decode
/// outputs out[step - 1][layer * heads + head] ([group * d]).
struct run_trace {
  std::vector<std::vector<std::vector<std::int32_t>>> positions;
  std::vector<std::vector<std::vector<double>>> out;
};

template <class Ladder, class Profiler>
auto run_cache(const problem& p, Ladder ladder, Profiler profiler) -> run_trace {
  const store_geometry g{1, p.layers, p.heads, head_dim, 4, 0};
  cache_options opt;
  opt.n_head_q = p.heads * p.group;
  adaptive_cache cache(std::move(ladder), std::move(profiler), g, opt);
  const auto n = static_cast<std::size_t>(p.length);
  const auto hq = static_cast<std::size_t>(opt.n_head_q);
  const auto hkv = static_cast<std::size_t>(p.heads);
  const auto gs = static_cast<std::size_t>(p.group);
  const auto d = static_cast<std::size_t>(head_dim);
  run_trace tr;
  auto record = [&] {
    std::vector<std::vector<std::int32_t>> pos;
    for (std::int32_t l = 0; l < p.layers; ++l) {
      for (std::int32_t h = 0; h < p.heads; ++h) {
        pos.push_back(reference::store_positions(cache.store(), {0, l, h}));
      }
    }
    tr.positions.push_back(pos);
  };
  const std::vector<token_class> classes(n, token_class::none);
  for (std::int32_t l = 0; l < p.layers; ++l) {
    std::vector<float> q(n * hq * d), k(n * hkv * d), v(n * hkv * d), out(n * hq * d);
    for (std::size_t h = 0; h < hkv; ++h) {
      const auto& hd = p.at(l, static_cast<std::int32_t>(h));
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t c = 0; c < d; ++c) {
          k[(i * hkv + h) * d + c] = hd.k[i * d + c];
          v[(i * hkv + h) * d + c] = hd.v[i * d + c];
          for (std::size_t r = 0; r < gs; ++r) {
            q[(i * hq + h * gs + r) * d + c] = hd.q[(i * gs + r) * d + c];
          }
        }
      }
    }
    cache.prefill(0, l, tensor_view<const float, 3>(q.data(), {n, hq, d}),
                  tensor_view<const float, 3>(k.data(), {n, hkv, d}),
                  tensor_view<const float, 3>(v.data(), {n, hkv, d}), classes,
                  tensor_view<float, 3>(out.data(), {n, hq, d}));
  }
  record();
  for (std::int32_t s = 0; s < p.steps; ++s) {
    std::vector<std::vector<double>> outs;
    for (std::int32_t l = 0; l < p.layers; ++l) {
      std::vector<float> q(hq * d), k(hkv * d), v(hkv * d), out(hq * d);
      for (std::size_t h = 0; h < hkv; ++h) {
        const auto& hd = p.at(l, static_cast<std::int32_t>(h));
        std::copy_n(hd.dk[static_cast<std::size_t>(s)].begin(), d, k.begin() + static_cast<std::ptrdiff_t>(h * d));
        std::copy_n(hd.dv[static_cast<std::size_t>(s)].begin(), d, v.begin() + static_cast<std::ptrdiff_t>(h * d));
        std::copy_n(hd.dq[static_cast<std::size_t>(s)].begin(), gs * d,
                    q.begin() + static_cast<std::ptrdiff_t>(h * gs * d));
      }
      cache.decode(0, l, tensor_view<const float, 2>(q.data(), {hq, d}),
                   tensor_view<const float, 2>(k.data(), {hkv, d}),
                   tensor_view<const float, 2>(v.data(), {hkv, d}), token_class::none,
                   tensor_view<float, 2>(out.data(), {hq, d}));
      for (std::size_t h = 0; h < hkv; ++h) {
        outs.emplace_back(out.begin() + static_cast<std::ptrdiff_t>(h * gs * d),
                          out.begin() + static_cast<std::ptrdiff_t>((h + 1) * gs * d));
      }
    }
    tr.out.push_back(outs);
    record();
  }
  return tr;
}

/// A reference policy for one head: the prompt's keep set, then one decode step at a time.
/// `decide(dec, t, probs)` evicts from `dec` after step t's attention.
template <class Prompt, class Decide>
auto run_reference(const problem& p, Prompt prompt, Decide decide) -> run_trace {
  run_trace tr;
  tr.positions.resize(static_cast<std::size_t>(p.steps) + 1);
  tr.out.resize(static_cast<std::size_t>(p.steps));
  for (std::int32_t l = 0; l < p.layers; ++l) {
    const auto kept_sets = prompt(l); // one set per head of the layer
    for (std::int32_t h = 0; h < p.heads; ++h) {
      const auto& hd = p.at(l, h);
      ref::decoder dec(hd, scale);
      dec.keep_prompt(kept_sets[static_cast<std::size_t>(h)]);
      tr.positions[0].push_back(dec.positions());
      std::vector<std::pair<std::int32_t, double>> probs;
      for (std::int32_t s = 0; s < p.steps; ++s) {
        const std::int32_t t = p.length + s + 1;
        tr.out[static_cast<std::size_t>(s)].push_back(dec.step(s, t - 1, probs));
        decide(l, h, dec, t, probs);
        tr.positions[static_cast<std::size_t>(s) + 1].push_back(dec.positions());
      }
    }
  }
  return tr;
}

void check_same(const run_trace& got, const run_trace& want) {
  REQUIRE(got.positions.size() == want.positions.size());
  for (std::size_t s = 0; s < got.positions.size(); ++s) {
    INFO("step " << s);
    REQUIRE(got.positions[s] == want.positions[s]);
  }
  for (std::size_t s = 0; s < got.out.size(); ++s) {
    for (std::size_t h = 0; h < got.out[s].size(); ++h) {
      for (std::size_t c = 0; c < got.out[s][h].size(); ++c) {
        REQUIRE(got.out[s][h][c] == Approx(want.out[s][h][c]).margin(2e-5));
      }
    }
  }
}

auto iota(std::int32_t from, std::int32_t to) -> std::vector<std::int32_t> {
  std::vector<std::int32_t> v;
  for (std::int32_t j = from; j < to; ++j) {
    v.push_back(j);
  }
  return v;
}

/// Per head of every layer, the same prompt keep set rule.
template <class F>
auto same_for_heads(const problem& p, F per_head) {
  return [&p, per_head](std::int32_t l) {
    std::vector<std::set<std::int32_t>> out;
    for (std::int32_t h = 0; h < p.heads; ++h) {
      out.push_back(per_head(p.at(l, h)));
    }
    return out;
  };
}

} // namespace

TEST_CASE("StreamingLLM keeps the sinks and the recent window at every step", "[streaming]") {
  const auto p = make(1, 2, 2, 40, 30, 11);
  const std::int32_t n_sinks = 3;
  const std::int32_t recent = 9;
  auto keep = [&](std::int32_t j, std::int32_t t) { return j < n_sinks || j >= t - recent; };
  const auto want = run_reference(
      p,
      same_for_heads(p,
                     [&](const ref::head_data& hd) {
                       std::set<std::int32_t> s;
                       for (std::int32_t j = 0; j < hd.length; ++j) {
                         if (keep(j, hd.length)) {
                           s.insert(j);
                         }
                       }
                       return s;
                     }),
      [&](std::int32_t, std::int32_t, ref::decoder& dec, std::int32_t t, const auto&) {
        for (const std::int32_t j : dec.positions()) {
          if (!keep(j, t)) {
            dec.evict(j);
          }
        }
      });
  check_same(run_cache(p, ladder<streaming_llm>(make_streaming_llm(n_sinks, recent)),
                       recovery_profiler(1.0)),
             want);
}

TEST_CASE("H2O keeps the recent window and the heavy hitters by accumulated attention",
          "[h2o]") {
  const std::int32_t heavy = 10;
  const std::int32_t recent = 6;
  for (const std::int32_t group : {1, 2}) {
    const auto p = make(1, 2, group, 48, 40, 20U + static_cast<std::uint32_t>(group));
    std::vector<std::map<std::int32_t, double>> score(static_cast<std::size_t>(p.heads));
    auto prompt = [&](std::int32_t l) {
      std::vector<std::set<std::int32_t>> out;
      for (std::int32_t h = 0; h < p.heads; ++h) {
        const auto a = ref::prompt_attention(p.at(l, h), scale);
        auto& sc = score[static_cast<std::size_t>(h)];
        for (std::int32_t j = 0; j < p.length; ++j) {
          sc[j] = 0.0;
          for (std::int32_t i = j; i < p.length; ++i) {
            sc[j] += a[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
          }
        }
        auto kept = ref::top_k(iota(0, p.length - recent), [&](std::int32_t j) { return sc[j]; },
                               heavy);
        for (std::int32_t j = p.length - recent; j < p.length; ++j) {
          kept.insert(j);
        }
        out.push_back(kept);
      }
      return out;
    };
    auto decide = [&](std::int32_t, std::int32_t h, ref::decoder& dec, std::int32_t t,
                      const std::vector<std::pair<std::int32_t, double>>& probs) {
      auto& sc = score[static_cast<std::size_t>(h)];
      for (const auto& [j, pj] : probs) {
        sc[j] += pj; // the new token's entry starts at 0 (default-inserted)
      }
      for (;;) { // evict the weakest non-recent token while over the heavy budget
        std::vector<std::int32_t> old;
        for (const std::int32_t j : dec.positions()) {
          if (j < t - recent) {
            old.push_back(j);
          }
        }
        if (old.size() <= static_cast<std::size_t>(heavy)) {
          break;
        }
        const auto weakest = *std::min_element(old.begin(), old.end(), [&](std::int32_t a, std::int32_t b) {
          return sc[a] < sc[b] || (sc[a] == sc[b] && a < b);
        });
        dec.evict(weakest);
      }
    };
    INFO("group " << group);
    check_same(run_cache(p, ladder<h2o>(h2o(heavy, recent)), recovery_profiler(1.0)),
               run_reference(p, prompt, decide));
  }
}

TEST_CASE("TOVA drops the token the current query attends to least", "[tova]") {
  const std::int32_t capacity = 12;
  for (const std::int32_t length : {40, 7}) { // a prompt longer and one shorter than the cache
    for (const std::int32_t group : {1, 2}) {
      const auto p = make(1, 2, group, length, 30, 30U + static_cast<std::uint32_t>(group + length));
      auto prompt = [&](std::int32_t l) {
        std::vector<std::set<std::int32_t>> out;
        for (std::int32_t h = 0; h < p.heads; ++h) {
          const auto a = ref::prompt_attention(p.at(l, h), scale);
          const auto& last = a.back();
          out.push_back(ref::top_k(iota(0, p.length),
                                   [&](std::int32_t j) { return last[static_cast<std::size_t>(j)]; },
                                   capacity));
        }
        return out;
      };
      auto decide = [&](std::int32_t, std::int32_t, ref::decoder& dec, std::int32_t,
                        const std::vector<std::pair<std::int32_t, double>>& probs) {
        if (probs.size() <= static_cast<std::size_t>(capacity)) {
          return;
        }
        const auto weakest = *std::min_element(probs.begin(), probs.end(), [](const auto& a, const auto& b) {
          return a.second < b.second || (a.second == b.second && a.first < b.first);
        });
        dec.evict(weakest.first);
      };
      INFO("length " << length << " group " << group);
      check_same(run_cache(p, ladder<tova>(tova(capacity)), recovery_profiler(1.0)),
                 run_reference(p, prompt, decide));
    }
  }
}

TEST_CASE("TOVA and H2O at the same budget keep different tokens", "[tova][h2o]") {
  const auto p = make(1, 2, 1, 48, 30, 41);
  const auto a = run_cache(p, ladder<tova>(tova(12)), recovery_profiler(1.0));
  const auto b = run_cache(p, ladder<h2o>(h2o(12, 0)), recovery_profiler(1.0));
  std::size_t differ = 0;
  for (std::size_t s = 0; s < a.positions.size(); ++s) {
    for (std::size_t h = 0; h < a.positions[s].size(); ++h) {
      CHECK(a.positions[s][h].size() == b.positions[s][h].size());
      differ += a.positions[s][h] != b.positions[s][h] ? 1 : 0;
    }
  }
  CHECK(differ > a.positions.size()); // most head-steps differ
}

namespace {
/// SnapKV's prompt sets for per-head budgets `budget(l, h, pooled)`; decode keeps everything.
template <class Budget>
auto snapkv_reference(const problem& p, std::int32_t window, std::int32_t kernel, bool max_pool,
                      Budget budget) -> run_trace {
  auto prompt = [&](std::int32_t l) {
    std::vector<std::vector<double>> pooled;
    for (std::int32_t h = 0; h < p.heads; ++h) {
      pooled.push_back(
          ref::snapkv_scores(ref::prompt_attention(p.at(l, h), scale), window, kernel, max_pool));
    }
    const auto budgets = budget(l, pooled);
    std::vector<std::set<std::int32_t>> out;
    for (std::int32_t h = 0; h < p.heads; ++h) {
      out.push_back(ref::snapkv_keep(pooled[static_cast<std::size_t>(h)], p.length, window,
                                     budgets[static_cast<std::size_t>(h)]));
    }
    return out;
  };
  return run_reference(p, prompt, [](auto&&...) {});
}
} // namespace

TEST_CASE("SnapKV keeps the observation window and the best pooled keys before it", "[snapkv]") {
  const std::int32_t budget = 10;
  const std::int32_t window = 6;
  SECTION("max pooling, one query head per KV head (the paper's multi-head attention)") {
    const auto p = make(1, 3, 1, 50, 12, 51);
    check_same(run_cache(p, ladder<snapkv>(snapkv(budget, window, 5, score_pool::max)),
                         recovery_profiler(1.0)),
               snapkv_reference(p, window, 5, true, [&](std::int32_t, const auto& pooled) {
                 return std::vector<std::int32_t>(pooled.size(), budget);
               }));
  }
  SECTION("average pooling over a GQA group of 2 (pooling is linear: the group mean commutes)") {
    const auto p = make(1, 2, 2, 50, 12, 52);
    check_same(run_cache(p, ladder<snapkv>(snapkv(budget, window, 3, score_pool::avg)),
                         recovery_profiler(1.0)),
               snapkv_reference(p, window, 3, false, [&](std::int32_t, const auto& pooled) {
                 return std::vector<std::int32_t>(pooled.size(), budget);
               }));
  }
  SECTION("a prompt within the budget is kept whole") {
    const auto p = make(1, 1, 1, 14, 5, 53);
    const auto got =
        run_cache(p, ladder<snapkv>(snapkv(budget, window, 5)), recovery_profiler(1.0));
    CHECK(got.positions[0][0] == iota(0, 14));
    CHECK(got.positions.back()[0] == iota(0, 19));
  }
}

TEST_CASE("PyramidKV gives deeper layers smaller SnapKV budgets", "[pyramidkv][snapkv]") {
  const std::int32_t mean_budget = 10;
  const std::int32_t window = 4;
  const std::int32_t beta = 4;
  const std::int32_t layers = 4;
  const auto p = make(layers, 2, 1, 40, 6, 61);
  // The reference code's schedule (PyramidKVCluster.update_kv), with capacity = B + w.
  auto schedule = [&](std::int32_t layer) {
    const std::int32_t cap = mean_budget + window;
    std::int32_t lo = (cap - window) / beta;
    std::int32_t hi = (cap - window) * 2 - lo;
    if (hi >= p.length - window) {
      hi = p.length - window;
      lo = (cap - window) * 2 - hi;
    }
    const std::int32_t steps = (hi - lo) / (layers - 1);
    return hi - layer * steps; // p.length >= 2 (cap - window): the pyramid branch
  };
  REQUIRE(schedule(0) > schedule(layers - 1));
  const auto got = run_cache(p, ladder<snapkv>(snapkv(mean_budget, window, 5)),
                             pyramid_profiler(mean_budget, beta));
  check_same(got, snapkv_reference(p, window, 5, true, [&](std::int32_t l, const auto& pooled) {
               return std::vector<std::int32_t>(pooled.size(), schedule(l));
             }));
  const pyramid_profiler pyr(mean_budget, beta);
  CHECK(pyr.layer_budget(0, layers, 12, 8) == 8);           // L < B + w: everything stays
  CHECK(pyr.layer_budget(2, layers, 18, 14) == mean_budget); // L < 2B: uniform
}

TEST_CASE("Ada-KV moves a layer's budget to the heads whose tokens score highest",
          "[adakv][snapkv]") {
  const std::int32_t budget = 8;
  const double alpha = 0.25;
  const std::int32_t window = 4;
  for (const std::int32_t group : {1, 2}) {
    auto p = make(2, 4, group, 36, 6, 70U + static_cast<std::uint32_t>(group));
    // Make the heads differ: head 0 attends sharply, head 3 almost uniformly.
    for (std::int32_t l = 0; l < p.layers; ++l) {
      for (auto& x : p.data[static_cast<std::size_t>(l * p.heads)].q) {
        x *= 3.0F;
      }
      for (auto& x : p.data[static_cast<std::size_t>(l * p.heads + 3)].q) {
        x *= 0.2F;
      }
    }
    // Ada-KV's allocation from its definition: every head's floor(alpha B) best, then the
    // layer's remaining H B - H floor(alpha B) by the best scores of all heads together.
    auto allocate = [&](std::int32_t, const std::vector<std::vector<double>>& pooled) {
      const auto floor_n = static_cast<std::int32_t>(alpha * budget);
      std::vector<std::int32_t> out(pooled.size(), floor_n);
      std::vector<std::pair<double, std::size_t>> rest;
      for (std::size_t h = 0; h < pooled.size(); ++h) {
        auto s = pooled[h];
        std::sort(s.rbegin(), s.rend());
        for (std::size_t j = static_cast<std::size_t>(floor_n); j < s.size(); ++j) {
          rest.emplace_back(s[j], h);
        }
      }
      std::sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      const auto share = static_cast<std::size_t>(budget - floor_n) * pooled.size();
      for (std::size_t j = 0; j < share; ++j) {
        ++out[rest[j].second];
      }
      return out;
    };
    INFO("group " << group);
    const auto pool = group == 1 ? score_pool::max : score_pool::avg;
    const auto got = run_cache(p, ladder<snapkv>(snapkv(budget, window, 3, pool)),
                               adakv_profiler(budget, alpha));
    check_same(got, snapkv_reference(p, window, 3, group == 1, allocate));
    // The layer's total is H * B, and the budgets are not all equal.
    std::size_t total = 0;
    std::set<std::size_t> sizes;
    for (std::int32_t h = 0; h < p.heads; ++h) {
      total += got.positions[0][static_cast<std::size_t>(h)].size() - static_cast<std::size_t>(window);
      sizes.insert(got.positions[0][static_cast<std::size_t>(h)].size());
    }
    CHECK(total == static_cast<std::size_t>(p.heads * budget));
    CHECK(sizes.size() > 1);
  }
}

TEST_CASE("reports name each head's actual budget", "[adakv][pyramidkv]") {
  const auto p = make(2, 3, 1, 30, 0, 81);
  const store_geometry g{1, 2, 3, head_dim, 4, 0};
  adaptive_cache cache(ladder<snapkv>(snapkv(6, 4, 3)), adakv_profiler(6, 0.2), g);
  (void)p;
  std::mt19937 rng(5);
  const std::size_t n = 30;
  const auto q = reference::random_vector(n * 3 * head_dim, rng, 2.0F);
  const auto k = reference::random_vector(n * 3 * head_dim, rng, 2.0F);
  const auto v = reference::random_vector(n * 3 * head_dim, rng);
  std::vector<float> out(q.size());
  const std::vector<token_class> classes(n, token_class::none);
  for (std::int32_t l = 0; l < 2; ++l) {
    cache.prefill(0, l, tensor_view<const float, 3>(q.data(), {n, 3, head_dim}),
                  tensor_view<const float, 3>(k.data(), {n, 3, head_dim}),
                  tensor_view<const float, 3>(v.data(), {n, 3, head_dim}), classes,
                  tensor_view<float, 3>(out.data(), {n, 3, head_dim}));
  }
  const auto r = cache.report();
  REQUIRE(r.heads.size() == 6);
  std::int32_t sum = 0;
  for (const auto& h : r.heads) {
    CHECK(h.fixed_budget);
    CHECK(h.kept == h.budget + 4);
    CHECK(h.label() == fmt::format("snapkv[k={}!]", h.budget));
    CHECK(cache.fixed_budget(h.head) == h.budget);
    sum += h.head.layer == 0 ? h.budget : 0;
  }
  CHECK(sum == 18);
}

TEST_CASE("a profiler's bad budget is a clear error", "[adakv]") {
  struct budget_on_full {
    auto operator()(const candidate_scores&) const -> head_choice { return {0, 3}; }
    auto operator==(const budget_on_full&) const -> bool = default;
  };
  struct negative_budget {
    auto operator()(const candidate_scores&) const -> head_choice { return {0, -2}; }
    auto operator==(const negative_budget&) const -> bool = default;
  };
  const store_geometry g{1, 1, 1, head_dim, 4, 0};
  std::vector<float> q(5 * head_dim, 0.5F), out(q.size());
  const std::vector<token_class> classes(5, token_class::none);
  auto prefill = [&](auto& cache) {
    cache.prefill(0, 0, tensor_view<const float, 3>(q.data(), {5, 1, head_dim}),
                  tensor_view<const float, 3>(q.data(), {5, 1, head_dim}),
                  tensor_view<const float, 3>(q.data(), {5, 1, head_dim}), classes,
                  tensor_view<float, 3>(out.data(), {5, 1, head_dim}));
  };
  adaptive_cache a(ladder<full>(), budget_on_full{}, g);
  CHECK_THROWS_WITH(prefill(a), Catch::Matchers::Contains("which has none"));
  adaptive_cache b(ladder<tova>(tova(2)), negative_budget{}, g);
  CHECK_THROWS_WITH(prefill(b), Catch::Matchers::Contains("must be >= 0"));
  CHECK(a.length(0, 0) == 0); // rolled back
}

TEST_CASE("peer policies reject bad parameters", "[tova][h2o][snapkv][streaming]") {
  CHECK_THROWS_AS(tova(-1), error);
  CHECK_THROWS_AS(h2o(-1, 2), error);
  CHECK_THROWS_AS(snapkv(4, 0), error);
  CHECK_THROWS_AS(snapkv(4, 4, 4), error); // even kernel
  CHECK_THROWS_AS(make_streaming_llm(-1, 3), error);
  CHECK_THROWS_AS(pyramid_profiler(8, 0), error);
  CHECK_THROWS_AS(adakv_profiler(8, 1.5), error);
  CHECK_THROWS_AS(frequent(0.3, length_base::current, score_rule::decayed(0.0F)), error);
}
