// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The configurations kvsieve-eval compares and the ladder each one builds:
///  main      FastGen (Eq. 2 ladder) for each T, and the full cache;
///  fixed     one policy on every head (local, frequent, local+frequent, sinks+recent) over a
///            sweep of ratios / windows, so that their memory brackets FastGen's;
///  peers     the field's policies on every head at fixed token budgets (H2O, TOVA, SnapKV,
///            PyramidKV, Ada-KV; policy/peers.hpp), to compare with FastGen at equal memory;
///  ablation  at T = 0.98: a member dropped from every candidate (Table 4), the order
///            special -> frequent -> local -> punct (Table 5), r_l / r_f, and the spec's §6
///            options (window base, score normalisation, sinks, new-token mode, frozen classes,
///            last-k recovery rows, GQA aggregation).

#include <cstdint>
#include <utility>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/kvsieve.hpp>

#include "runner.hpp"

namespace eval {

enum class ladder_kind {
  fastgen,
  full,
  local,
  frequent,
  local_frequent,
  streaming,
  no_special,
  no_punct,
  no_local,
  no_frequent,
  order_sflp,
  h2o,       ///< peers: policies::h2o, heavy = recent = budget / 2
  tova,      ///< policies::tova(budget)
  snapkv,    ///< policies::snapkv(budget, peer_window)
  pyramidkv, ///< snapkv with pyramid_profiler(budget)
  adakv,     ///< snapkv with adakv_profiler(budget)
};

/// The observation window of SnapKV, PyramidKV and Ada-KV here: a tenth of the 160-token prompts
/// (the papers use 32-64 rows of prompts 10-100x longer).
inline constexpr std::int32_t peer_window = 16;

struct config_spec {
  std::string group;  ///< main | fixed | peers | ablation
  std::string method; ///< the curve: fastgen, full, local, frequent, local+frequent, streaming,
                      ///< or the ablation's name
  ladder_kind kind = ladder_kind::fastgen;
  double threshold = 1.0;
  kvsieve::fastgen_params params{}; ///< r_l, r_f, window/budget base, ranking
  std::int32_t window = 0;          ///< streaming: recent tokens
  std::int32_t budget = 0;          ///< peers: budget in tokens (per head, mean per layer)
  kvsieve::cache_options options{};
  bool profile = false;             ///< run the profiling-cost lengths too

  [[nodiscard]] auto name() const -> std::string {
    std::string s = method;
    if (kind == ladder_kind::fastgen || group == "ablation") {
      s += fmt::format(" T={:.2f}", threshold);
    }
    if (kind == ladder_kind::local || kind == ladder_kind::local_frequent) {
      s += fmt::format(" r_l={:.2f}", params.local_ratio);
    }
    if (kind == ladder_kind::frequent || kind == ladder_kind::local_frequent) {
      s += fmt::format(" r_f={:.2f}", params.frequent_ratio);
    }
    if (kind == ladder_kind::streaming) {
      s += fmt::format(" window={}", window);
    }
    if (group == "peers") {
      s += fmt::format(" budget={}", budget);
    }
    return s;
  }
};

/// Runs `spec` on the workload with its ladder type.
inline auto run_config(const config_spec& spec, const environment& env, const workload& w)
    -> result {
  using namespace kvsieve::policies;
  using kvsieve::ladder;
  const auto& p = spec.params;
  const frequent freq(p.frequent_ratio, p.budget_base, p.ranking);
  const local loc(p.local_ratio, p.window_base);
  const double t = spec.threshold;
  const auto& o = spec.options;
  switch (spec.kind) {
  case ladder_kind::fastgen:
    return evaluate(kvsieve::make_fastgen_ladder(p), t, o, env, w);
  case ladder_kind::full:
    return evaluate(ladder<full>(), 1.0, o, env, w);
  case ladder_kind::local:
    return evaluate(ladder<local>(loc), 1.0, o, env, w);
  case ladder_kind::frequent:
    return evaluate(ladder<frequent>(freq), 1.0, o, env, w);
  case ladder_kind::local_frequent:
    return evaluate(ladder<local_frequent>(local_frequent(loc, freq)), 1.0, o, env, w);
  case ladder_kind::streaming:
    return evaluate(ladder<streaming>(streaming(sinks(4), recent(spec.window))), 1.0, o, env, w);
  case ladder_kind::h2o:
    return evaluate(ladder<h2o>(h2o(spec.budget / 2, spec.budget - spec.budget / 2)), 1.0, o, env,
                    w);
  case ladder_kind::tova:
    return evaluate(ladder<tova>(tova(spec.budget)), 1.0, o, env, w);
  case ladder_kind::snapkv:
    return evaluate(ladder<snapkv>(snapkv(spec.budget, peer_window)), 1.0, o, env, w);
  case ladder_kind::pyramidkv:
    return evaluate_with(ladder<snapkv>(snapkv(spec.budget, peer_window)),
                         kvsieve::pyramid_profiler(spec.budget), o, env, w);
  case ladder_kind::adakv:
    return evaluate_with(ladder<snapkv>(snapkv(spec.budget, peer_window)),
                         kvsieve::adakv_profiler(spec.budget), o, env, w);
  case ladder_kind::no_special: {
    using pf = hybrid<punctuation, frequent>;
    using pfl = hybrid<punctuation, frequent, local>;
    return evaluate(ladder<punctuation, pf, pfl, full>(punctuation{}, pf(punctuation{}, freq),
                                                       pfl(punctuation{}, freq, loc), full{}),
                    t, o, env, w);
  }
  case ladder_kind::no_punct: {
    using sf = hybrid<special, frequent>;
    using sfl = hybrid<special, frequent, local>;
    return evaluate(ladder<special, sf, sfl, full>(special{}, sf(special{}, freq),
                                                   sfl(special{}, freq, loc), full{}),
                    t, o, env, w);
  }
  case ladder_kind::no_local:
    return evaluate(ladder<special, special_punct, special_punct_frequent, full>(
                        special{}, special_punct{}, special_punct_frequent({}, {}, freq), full{}),
                    t, o, env, w);
  case ladder_kind::no_frequent: {
    using spl = hybrid<special, punctuation, local>;
    return evaluate(ladder<special, special_punct, spl, full>(special{}, special_punct{},
                                                              spl({}, {}, loc), full{}),
                    t, o, env, w);
  }
  case ladder_kind::order_sflp: {
    using sf = hybrid<special, frequent>;
    using sfl = hybrid<special, frequent, local>;
    using sflp = hybrid<special, frequent, local, punctuation>;
    return evaluate(ladder<special, sf, sfl, sflp, full>(special{}, sf(special{}, freq),
                                                         sfl(special{}, freq, loc),
                                                         sflp(special{}, freq, loc, {}), full{}),
                    t, o, env, w);
  }
  }
  return {};
}

/// The configuration list. quick: 2 T values, one fixed policy, one peer, no ablations.
/// fixed_ratios / windows / budgets: the fixed-policy and peer sweeps (empty: the defaults).
inline auto make_configs(bool quick, bool ablations, std::vector<double> fixed_ratios = {},
                         std::vector<std::int32_t> windows = {},
                         std::vector<std::int32_t> budgets = {}) -> std::vector<config_spec> {
  std::vector<config_spec> c;
  c.push_back({.group = "main", .method = "full", .kind = ladder_kind::full, .profile = true});
  const std::vector<double> ts = quick ? std::vector<double>{0.90, 0.98}
                                       : std::vector<double>{0.80, 0.85, 0.90, 0.95, 0.98, 0.99};
  for (const double t : ts) {
    c.push_back({.group = "main", .method = "fastgen", .kind = ladder_kind::fastgen,
                 .threshold = t, .profile = t == 0.95 || quick});
  }
  const std::vector<double> ratios =
      quick ? std::vector<double>{0.5}
            : (fixed_ratios.empty() ? std::vector<double>{0.1, 0.2, 0.3, 0.5, 0.7, 0.9}
                                    : fixed_ratios);
  if (windows.empty()) {
    windows = {28, 60, 124, 252, 380};
  }
  for (const double r : ratios) {
    c.push_back({.group = "fixed", .method = "local", .kind = ladder_kind::local,
                 .params = {.local_ratio = r}});
    if (quick) {
      break;
    }
    c.push_back({.group = "fixed", .method = "frequent", .kind = ladder_kind::frequent,
                 .params = {.frequent_ratio = r}});
    c.push_back({.group = "fixed", .method = "local+frequent", .kind = ladder_kind::local_frequent,
                 .params = {.local_ratio = r / 2, .frequent_ratio = r / 2}});
  }
  if (budgets.empty()) {
    budgets = quick ? std::vector<std::int32_t>{48}
                    : std::vector<std::int32_t>{8, 24, 48, 80, 120, 160, 240};
  }
  for (const std::int32_t b : budgets) {
    for (const auto& [method, kind] :
         {std::pair{"tova", ladder_kind::tova}, std::pair{"h2o", ladder_kind::h2o},
          std::pair{"snapkv", ladder_kind::snapkv}, std::pair{"pyramidkv", ladder_kind::pyramidkv},
          std::pair{"adakv", ladder_kind::adakv}}) {
      c.push_back({.group = "peers", .method = method, .kind = kind, .budget = b});
      if (quick) {
        break;
      }
    }
  }
  if (!quick) {
    for (const std::int32_t win : windows) {
      c.push_back({.group = "fixed", .method = "streaming", .kind = ladder_kind::streaming,
                   .window = win});
    }
  }
  if (quick || !ablations) {
    return c;
  }
  const double t = 0.98;
  auto abl = [&](std::string name, ladder_kind kind, kvsieve::fastgen_params p = {},
                 kvsieve::cache_options o = {}) {
    c.push_back({.group = "ablation", .method = std::move(name), .kind = kind, .threshold = t,
                 .params = p, .options = o});
  };
  abl("no special", ladder_kind::no_special);
  abl("no punct", ladder_kind::no_punct);
  abl("no local", ladder_kind::no_local);
  abl("no frequent", ladder_kind::no_frequent);
  abl("order S-F-L-P", ladder_kind::order_sflp);
  for (const double r : {0.1, 0.2, 0.4}) {
    abl(fmt::format("r_l={:.1f}", r), ladder_kind::fastgen, {.local_ratio = r});
    abl(fmt::format("r_f={:.1f}", r), ladder_kind::fastgen, {.frequent_ratio = r});
  }
  abl("window/budget base prompt", ladder_kind::fastgen,
      {.window_base = kvsieve::length_base::prompt, .budget_base = kvsieve::length_base::prompt});
  abl("score mean", ladder_kind::fastgen, {.ranking = kvsieve::score_mode::mean});
  abl("sinks 4", ladder_kind::fastgen, {}, {.n_sinks = 4});
  abl("GQA worst", ladder_kind::fastgen, {}, {.group = kvsieve::group_reduce::worst});
  abl("new token drop", ladder_kind::fastgen, {},
      {.new_token = kvsieve::new_token_mode::drop_before_attention});
  abl("frozen classes", ladder_kind::fastgen, {},
      {.generated = kvsieve::generated_class_mode::frozen});
  // The prompts are 160 tokens by default, so 32/64/128 rows are a fifth to four fifths of them;
  // k >= the prompt length is the DEFAULT (all rows).
  for (const std::int32_t k : {32, 64, 128}) {
    abl(fmt::format("recovery rows {}", k), ladder_kind::fastgen, {}, {.recovery_rows = k});
  }
  return c;
}

} // namespace eval
