// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The stability check of FastGen's Fig. 4: does the attention structure the profile sees on the
/// prompt hold while generating? For each prompt, the full cache generates greedily; then for
/// each s in `steps` a fresh FastGen cache prefills prompt + the first s generated tokens and
/// reports the recovered mass of every ladder candidate. s = 0 measures all prompt rows (the
/// profile FastGen acts on); s > 0 sets recovery_rows = s, so that only the query rows of the
/// generated tokens count (fastgen-spec §6.1 OPTION) while keep sets, windows and the frequent
/// scores are those of the whole sequence, as a re-profile at that step would see them.
/// The prompt is also measured on its last max(steps) rows alone: early prompt rows sit wholly
/// inside any local window and so recover more than late rows, and this baseline separates
/// "later in the sequence" from "generated rather than prompt".
///
/// This re-profiles rather than following the decoding cache: the frequent budget of a real
/// decode is filled online, which no single prefill reproduces; the question here is whether the
/// categories still cover the mass, not the exact online keep set.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <kvsieve/kvsieve.hpp>

#include <llama/model.hpp>

#include "runner.hpp"

namespace eval {

struct stability_row {
  std::int32_t prompt = 0;
  std::int32_t layer = 0;
  std::int32_t kv_head = 0;
  std::int32_t generated = 0; ///< s: generated tokens appended to the prompt
  std::int32_t rows = 0;      ///< query rows measured: the last `rows` of the sequence
  std::int32_t candidate = 0; ///< ladder index
  std::string policy;
  double recovered = 0.0;
};

/// Greedy tokens of the full cache after `prompt`.
inline auto greedy_full(const environment& env, const std::vector<std::int32_t>& prompt,
                        std::int32_t n) -> std::vector<std::int32_t> {
  using ladder_type = kvsieve::ladder<kvsieve::policies::full>;
  using store_type = kvsieve::paged_store<float, kvsieve::host_space>;
  using cache_type = kvsieve::adaptive_cache<ladder_type, kvsieve::recovery_profiler, store_type>;
  const auto& cfg = env.cfg;
  cache_type cache(ladder_type(), kvsieve::recovery_profiler(1.0),
                   {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
                    .head_dim = cfg.head_dim, .page_size = 16},
                   {.n_head_q = cfg.n_head});
  llama::model<cache_type> model(cfg, env.weights);
  auto logits = model.prefill(cache, 0, prompt, env.classifier.classify(prompt));
  std::vector<std::int32_t> out;
  while (static_cast<std::int32_t>(out.size()) < n &&
         cache.length(0, 0) + 1 < cfg.max_position_embeddings) {
    out.push_back(argmax(logits));
    if (static_cast<std::int32_t>(out.size()) < n) {
      logits = model.decode(cache, 0, out.back(), env.classifier(out.back()));
    }
  }
  return out;
}

/// Candidates' recovered mass on every KV head, for each prompt and each s in `steps`.
template <class Ladder>
auto stability(const Ladder& ladder, double threshold, const environment& env,
               const std::vector<std::vector<std::int32_t>>& prompts,
               const std::vector<std::int32_t>& steps) -> std::vector<stability_row> {
  using store_type = kvsieve::paged_store<float, kvsieve::host_space>;
  using cache_type = kvsieve::adaptive_cache<Ladder, kvsieve::recovery_profiler, store_type>;
  const auto& cfg = env.cfg;
  std::int32_t most = 0;
  for (const auto s : steps) {
    most = std::max(most, s);
  }
  std::vector<stability_row> out;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    const auto gen = greedy_full(env, prompts[p], most);
    // (generated tokens, recovery rows; 0 = all)
    std::vector<std::pair<std::int32_t, std::int32_t>> plan;
    for (const auto s : steps) {
      plan.emplace_back(s, s);
      if (s == 0 && most > 0) {
        plan.emplace_back(0, most);
      }
    }
    for (const auto& [s, k] : plan) {
      if (s > static_cast<std::int32_t>(gen.size())) {
        continue; // the context ran out
      }
      auto seq = prompts[p];
      seq.insert(seq.end(), gen.begin(), gen.begin() + s);
      cache_type cache(ladder, kvsieve::recovery_profiler(threshold),
                       {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
                        .head_dim = cfg.head_dim, .page_size = 16},
                       {.n_head_q = cfg.n_head, .recovery_rows = k});
      llama::model<cache_type> model(cfg, env.weights);
      (void)model.prefill(cache, 0, seq, env.classifier.classify(seq));
      const std::int32_t rows = k > 0 ? std::min(k, static_cast<std::int32_t>(seq.size()))
                                      : static_cast<std::int32_t>(seq.size());
      for (const auto& h : cache.report().heads) {
        for (std::size_t i = 0; i < h.candidates.size(); ++i) {
          out.push_back({static_cast<std::int32_t>(p), h.head.layer, h.head.head, s, rows,
                         static_cast<std::int32_t>(i), std::string(Ladder::name(i)),
                         h.candidates[i]});
        }
      }
    }
  }
  return out;
}

} // namespace eval
