// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// One policy configuration run over a fixed workload through the reference decoder:
///  - teacher forcing: prefill a prompt, then feed the true continuation token by token with
///    model.decode, summing -log2 p(true next token); the KV memory ratio bytes_resident /
///    bytes_full is sampled after every decode step;
///  - greedy generation from prompts (compared with the full cache's tokens by the caller);
///  - retrieval: prefill a key/value context, then feed each question and its true answer token
///    by token; a question counts when argmax equals every answer token (== greedy exact match);
///  - profiling cost: prefill a short prompt and generate N tokens greedily.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <kvsieve/kvsieve.hpp>

#include <llama/config.hpp>
#include <llama/model.hpp>
#include <llama/tokenizer.hpp>
#include <llama/weights.hpp>

namespace eval {

using clock_type = std::chrono::steady_clock;

struct environment {
  const llama::config& cfg;
  const llama::model_weights& weights;
  const llama::tokenizer& tok;
  const kvsieve::token_classifier& classifier;
};

struct workload {
  struct teacher_item {
    std::string name;                       ///< the document the snippet comes from
    std::vector<std::int32_t> prompt;       ///< BOS + prompt tokens
    std::vector<std::int32_t> continuation; ///< scored tokens
    std::size_t continuation_bytes = 0;
  };
  struct question {
    std::vector<std::int32_t> ask;    ///< "print(k_xxxx)  # -> '"
    std::vector<std::int32_t> answer; ///< the value's tokens (scored)
    std::vector<std::int32_t> tail;   ///< "'\n" (fed, not scored)
  };
  struct retrieval_item {
    std::size_t context_bytes = 0;
    std::vector<std::int32_t> context;
    std::vector<question> questions;
  };
  std::vector<teacher_item> teacher;
  std::vector<std::vector<std::int32_t>> gen_prompts;
  std::int32_t gen_tokens = 0;
  std::vector<retrieval_item> retrieval;
  std::vector<std::int32_t> profile_prompt;
  std::vector<std::int32_t> profile_lengths; ///< generated tokens per profiling run
};

struct profile_row {
  std::int32_t prompt_tokens = 0;
  std::int32_t generated = 0;
  double total_seconds = 0.0;   ///< prefill start to end of generation
  double profile_seconds = 0.0; ///< cache_report.profile_seconds of this run
};

struct result {
  double bits = 0.0;
  double bytes = 0.0;
  double tokens = 0.0;                         ///< scored tokens
  std::vector<std::vector<double>> token_bits; ///< [teacher item][token]: for the paired CIs
  double mem_ratio_sum = 0.0; ///< sum over decode steps of bytes_resident / bytes_full
  std::int64_t mem_steps = 0;
  double final_saved_sum = 0.0; ///< sum over teacher items of saved_fraction() at the end
  double kept_fraction_sum = 0.0; ///< sum over teacher items of mean_kept_fraction
  std::int32_t items = 0;
  double profile_seconds = 0.0; ///< over the teacher-forced runs
  double run_seconds = 0.0;     ///< over the teacher-forced runs
  double wall_seconds = 0.0;    ///< the whole configuration
  std::vector<std::vector<std::int32_t>> generated;
  std::map<std::size_t, std::array<std::int32_t, 4>> retrieval; ///< bytes -> ok, n, ok tokens, n tokens
  std::vector<std::string> policy_names;            ///< the ladder's names
  std::vector<std::vector<std::int32_t>> choices;   ///< [layer][ladder index] KV-head counts
  std::vector<profile_row> profile;
};

/// -log2 softmax(logits)[target].
inline auto neg_log2_prob(const std::vector<float>& logits, std::int32_t target) -> double {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (const float x : logits) {
    sum += std::exp(static_cast<double>(x - mx));
  }
  const double lp = static_cast<double>(logits[static_cast<std::size_t>(target)] - mx) -
                    std::log(sum);
  return -lp / std::log(2.0);
}

inline auto argmax(const std::vector<float>& logits) -> std::int32_t {
  return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) -
                                   logits.begin());
}

template <class Ladder, class Profiler>
auto evaluate_with(Ladder ladder, Profiler profiler, kvsieve::cache_options opt,
                   const environment& env, const workload& w) -> result {
  using store_type = kvsieve::paged_store<float, kvsieve::host_space>;
  using cache_type = kvsieve::adaptive_cache<Ladder, Profiler, store_type>;
  const auto start = clock_type::now();
  const auto& cfg = env.cfg;
  opt.n_head_q = cfg.n_head;
  cache_type cache(std::move(ladder), std::move(profiler),
                   {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
                    .head_dim = cfg.head_dim, .page_size = 16},
                   opt);
  llama::model<cache_type> model(cfg, env.weights);
  result r;
  for (std::size_t i = 0; i < Ladder::size; ++i) {
    r.policy_names.emplace_back(Ladder::name(i));
  }
  r.choices.assign(static_cast<std::size_t>(cfg.n_layer),
                   std::vector<std::int32_t>(Ladder::size, 0));
  const auto classes = [&](const std::vector<std::int32_t>& ids) {
    return env.classifier.classify(ids);
  };
  const auto step = [&](std::int32_t token) {
    return model.decode(cache, 0, token, env.classifier(token));
  };

  // Teacher forcing.
  for (const auto& item : w.teacher) {
    const double prof0 = cache.report().profile_seconds;
    const auto t0 = clock_type::now();
    auto logits = model.prefill(cache, 0, item.prompt, classes(item.prompt));
    auto& bits = r.token_bits.emplace_back();
    for (const auto& h : cache.report().heads) {
      ++r.choices[static_cast<std::size_t>(h.head.layer)][static_cast<std::size_t>(h.choice)];
    }
    for (std::size_t j = 0; j < item.continuation.size(); ++j) {
      const std::int32_t next = item.continuation[j];
      bits.push_back(neg_log2_prob(logits, next));
      r.bits += bits.back();
      if (j + 1 == item.continuation.size()) {
        break;
      }
      logits = step(next);
      const auto rep = cache.report();
      r.mem_ratio_sum += static_cast<double>(rep.bytes_resident) /
                         static_cast<double>(rep.bytes_full);
      ++r.mem_steps;
    }
    r.run_seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
    const auto rep = cache.report();
    r.bytes += static_cast<double>(item.continuation_bytes);
    r.tokens += static_cast<double>(item.continuation.size());
    r.final_saved_sum += rep.saved_fraction();
    r.kept_fraction_sum += rep.mean_kept_fraction;
    r.profile_seconds += rep.profile_seconds - prof0;
    ++r.items;
    cache.release(0);
  }

  // Greedy generation.
  for (const auto& prompt : w.gen_prompts) {
    auto logits = model.prefill(cache, 0, prompt, classes(prompt));
    std::vector<std::int32_t> out;
    for (std::int32_t g = 0; g < w.gen_tokens; ++g) {
      const std::int32_t next = argmax(logits);
      out.push_back(next);
      if (g + 1 == w.gen_tokens || cache.length(0, 0) + 1 >= cfg.max_position_embeddings) {
        break;
      }
      logits = step(next);
    }
    r.generated.push_back(std::move(out));
    cache.release(0);
  }

  // Retrieval.
  for (const auto& item : w.retrieval) {
    auto logits = model.prefill(cache, 0, item.context, classes(item.context));
    auto& [ok, n, tok_ok, tok_n] = r.retrieval[item.context_bytes];
    for (const auto& q : item.questions) {
      for (const auto t : q.ask) {
        logits = step(t);
      }
      bool exact = true;
      for (const auto t : q.answer) {
        const bool hit = argmax(logits) == t;
        exact = exact && hit;
        tok_ok += hit ? 1 : 0;
        ++tok_n;
        logits = step(t);
      }
      for (const auto t : q.tail) {
        logits = step(t);
      }
      ok += exact ? 1 : 0;
      ++n;
    }
    cache.release(0);
  }

  // Profiling cost per generation length.
  for (const auto len : w.profile_lengths) {
    const double prof0 = cache.report().profile_seconds;
    const auto t0 = clock_type::now();
    auto logits = model.prefill(cache, 0, w.profile_prompt, classes(w.profile_prompt));
    std::int32_t g = 0;
    while (g < len) {
      const std::int32_t next = argmax(logits);
      ++g;
      if (g == len || cache.length(0, 0) + 1 >= cfg.max_position_embeddings) {
        break;
      }
      logits = step(next);
    }
    const double total = std::chrono::duration<double>(clock_type::now() - t0).count();
    r.profile.push_back({static_cast<std::int32_t>(w.profile_prompt.size()), g, total,
                         cache.report().profile_seconds - prof0});
    cache.release(0);
  }
  r.wall_seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  return r;
}

/// evaluate_with FastGen's profiler at threshold T.
template <class Ladder>
auto evaluate(Ladder ladder, double threshold, kvsieve::cache_options opt,
              const environment& env, const workload& w) -> result {
  return evaluate_with(std::move(ladder), kvsieve::recovery_profiler(threshold), opt, env, w);
}

} // namespace eval
