// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// CSV output of kvsieve-eval (columns documented in docs/results.md):
///   results.csv    one row per configuration: memory, quality, agreement, retrieval, cost
///   retrieval.csv  one row per configuration x context length
///   heads.csv      one row per configuration x layer x ladder candidate: share of KV heads
///   profile.csv    one row per configuration x generation length: profiling time share
///   stability.csv  one row per prompt x layer x KV head x generated tokens x ladder candidate

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/kvsieve.hpp>

#include "configs.hpp"
#include "runner.hpp"
#include "stability.hpp"

namespace eval {

inline constexpr const char* results_header =
    "group,data,method,config,threshold,local_ratio,frequent_ratio,window,sinks,window_base,"
    "score,gqa,recovery_rows,new_token,generated_classes,kv_mem_mean,kv_saved_mean,"
    "kv_saved_final,mean_kept_fraction,bpb,bpb_full,bpb_delta,bpb_delta_lo,bpb_delta_hi,"
    "scored_bytes,gen_agreement,gen_agreement_lo,gen_agreement_hi,gen_first_divergence,"
    "gen_tokens,retrieval_accuracy,retrieval_questions,retrieval_token_accuracy,profile_share,"
    "profile_seconds,wall_seconds,policy_counts";

inline constexpr const char* stability_header =
    "prompt,layer,kv_head,generated,rows,candidate,policy,recovered";

/// Tokens per block of the bits/byte bootstrap: consecutive tokens' losses are correlated, so
/// blocks, not tokens, are resampled.
inline constexpr std::size_t ci_block_tokens = 32;

/// 95% percentile bootstrap interval of scale * sum(a) / sum(b) over units (a, b), resampled
/// with replacement; a fixed seed keeps the CSV reproducible.
inline auto bootstrap_ratio(const std::vector<std::pair<double, double>>& units, double scale)
    -> std::pair<double, double> {
  if (units.empty()) {
    return {0.0, 0.0};
  }
  constexpr int reps = 2000;
  std::mt19937_64 rng(20261123);
  std::uniform_int_distribution<std::size_t> pick(0, units.size() - 1);
  std::vector<double> stats;
  stats.reserve(reps);
  for (int r = 0; r < reps; ++r) {
    double a = 0.0;
    double b = 0.0;
    for (std::size_t i = 0; i < units.size(); ++i) {
      const auto& u = units[pick(rng)];
      a += u.first;
      b += u.second;
    }
    stats.push_back(b > 0.0 ? scale * a / b : 0.0);
  }
  std::sort(stats.begin(), stats.end());
  return {stats[reps * 25 / 1000], stats[reps * 975 / 1000 - 1]};
}

/// Paired blocks (bits of `r` - bits of `ref`, tokens) over the teacher items both scored.
inline auto delta_blocks(const result& r, const result& ref)
    -> std::vector<std::pair<double, double>> {
  std::vector<std::pair<double, double>> out;
  for (std::size_t i = 0; i < r.token_bits.size() && i < ref.token_bits.size(); ++i) {
    const auto& a = r.token_bits[i];
    const auto& b = ref.token_bits[i];
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t s = 0; s < n; s += ci_block_tokens) {
      double d = 0.0;
      const std::size_t e = std::min(n, s + ci_block_tokens);
      for (std::size_t t = s; t < e; ++t) {
        d += a[t] - b[t];
      }
      out.emplace_back(d, static_cast<double>(e - s));
    }
  }
  return out;
}

/// Writes the stability study's rows (columns: stability_header).
inline void write_stability(const std::filesystem::path& dir,
                            const std::vector<stability_row>& rows) {
  std::ofstream f(dir / "stability.csv");
  kvsieve::expects(static_cast<bool>(f), kvsieve::errc::io,
                   [&] { return "cannot write " + (dir / "stability.csv").string(); });
  f << stability_header << '\n';
  for (const auto& r : rows) {
    f << fmt::format("{},{},{},{},{},{},{},{:.6f}\n", r.prompt, r.layer, r.kv_head, r.generated,
                     r.rows, r.candidate, r.policy, r.recovered);
  }
}

class report_writer {
public:
  /// `data`: the split the workload came from (held-out | tune), written on every row.
  report_writer(const std::filesystem::path& dir, std::string data)
      : data_(std::move(data)), results_(dir / "results.csv"), retrieval_(dir / "retrieval.csv"),
        heads_(dir / "heads.csv"), profile_(dir / "profile.csv") {
    kvsieve::expects(results_ && retrieval_ && heads_ && profile_, kvsieve::errc::io,
                     [&] { return "cannot write CSV files under " + dir.string(); });
    results_ << results_header << '\n';
    retrieval_ << "config,context_bytes,correct,questions,accuracy,token_accuracy\n";
    heads_ << "config,layer,policy,kv_heads,share\n";
    profile_ << "config,prompt_tokens,generated_tokens,total_seconds,profile_seconds,"
                "profile_share\n";
  }

  void add(const config_spec& spec, const result& r, const result& ref) {
    const std::string name = spec.name();
    const double mem = r.mem_steps > 0 ? r.mem_ratio_sum / static_cast<double>(r.mem_steps) : 1.0;
    const double items = std::max(1, r.items);
    const double bpb = r.bytes > 0 ? r.bits / r.bytes : 0.0;
    const double bpb_full = ref.bytes > 0 ? ref.bits / ref.bytes : bpb;
    // Greedy agreement with the full cache's tokens, position by position.
    std::int64_t same = 0;
    std::int64_t total = 0;
    double first_div = 0.0;
    std::vector<std::pair<double, double>> prompt_units; // (same, compared) per prompt
    for (std::size_t p = 0; p < r.generated.size() && p < ref.generated.size(); ++p) {
      const auto& a = r.generated[p];
      const auto& b = ref.generated[p];
      const std::size_t n = std::min(a.size(), b.size());
      std::size_t first = n;
      std::int64_t same_here = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (a[i] == b[i]) {
          ++same_here;
        } else if (first == n) {
          first = i;
        }
      }
      same += same_here;
      prompt_units.emplace_back(static_cast<double>(same_here), static_cast<double>(n));
      total += static_cast<std::int64_t>(n);
      first_div += static_cast<double>(first);
    }
    const auto prompts = static_cast<double>(std::max<std::size_t>(1, r.generated.size()));
    std::int32_t ok = 0;
    std::int32_t asked = 0;
    std::int32_t tok_ok = 0;
    std::int32_t tok_n = 0;
    for (const auto& [bytes, c] : r.retrieval) {
      ok += c[0];
      asked += c[1];
      tok_ok += c[2];
      tok_n += c[3];
      retrieval_ << fmt::format("{},{},{},{},{:.4f},{:.4f}\n", name, bytes, c[0], c[1],
                                c[1] > 0 ? static_cast<double>(c[0]) / c[1] : 0.0,
                                c[3] > 0 ? static_cast<double>(c[2]) / c[3] : 0.0);
    }
    std::string counts;
    std::vector<std::int32_t> totals(r.policy_names.size(), 0);
    std::int32_t heads_per_layer = 0;
    for (const auto& layer : r.choices) {
      heads_per_layer = 0;
      for (std::size_t i = 0; i < layer.size(); ++i) {
        totals[i] += layer[i];
        heads_per_layer += layer[i];
      }
    }
    for (std::size_t l = 0; l < r.choices.size(); ++l) {
      for (std::size_t i = 0; i < r.policy_names.size(); ++i) {
        heads_ << fmt::format("{},{},{},{},{:.4f}\n", name, l, r.policy_names[i], r.choices[l][i],
                              heads_per_layer > 0 ? static_cast<double>(r.choices[l][i]) /
                                                        heads_per_layer
                                                  : 0.0);
      }
    }
    for (std::size_t i = 0; i < r.policy_names.size(); ++i) {
      counts += fmt::format("{}{}:{}", i == 0 ? "" : ";", r.policy_names[i], totals[i]);
    }
    for (const auto& p : r.profile) {
      profile_ << fmt::format("{},{},{},{:.4f},{:.6f},{:.6f}\n", name, p.prompt_tokens,
                              p.generated, p.total_seconds, p.profile_seconds,
                              p.total_seconds > 0 ? p.profile_seconds / p.total_seconds : 0.0);
    }
    const auto& pr = spec.params;
    const auto& op = spec.options;
    // Token-level deltas scaled to bits per byte: sum(delta) / bytes = mean delta per token *
    // tokens / bytes, so the interval is over the same quantity as bpb_delta.
    const auto [d_lo, d_hi] =
        bootstrap_ratio(delta_blocks(r, ref), r.bytes > 0 ? r.tokens / r.bytes : 1.0);
    const auto [a_lo, a_hi] = bootstrap_ratio(prompt_units, 1.0);
    results_ << fmt::format(
        "{},{},{},{},{:.2f},{:.3f},{:.3f},{},{},{},{},{},{},{},{},{:.5f},{:.5f},{:.5f},{:.5f},"
        "{:.5f},{:.5f},{:.5f},{:.5f},{:.5f},{},{:.4f},{:.4f},{:.4f},{:.2f},{},{:.4f},{},{:.4f},"
        "{:.6f},{:.5f},{:.2f},{}\n",
        spec.group, data_, spec.method, name, spec.threshold, pr.local_ratio, pr.frequent_ratio,
        spec.window, op.n_sinks,
        pr.window_base == kvsieve::length_base::current ? "current" : "prompt",
        kvsieve::to_string(pr.ranking.mode),
        op.group == kvsieve::group_reduce::mean ? "mean" : "worst", op.recovery_rows,
        op.new_token == kvsieve::new_token_mode::attend_then_decide ? "attend" : "drop",
        op.generated == kvsieve::generated_class_mode::classify ? "classify" : "frozen", mem,
        1.0 - mem, r.final_saved_sum / items, r.kept_fraction_sum / items, bpb, bpb_full,
        bpb - bpb_full, d_lo, d_hi, static_cast<std::int64_t>(r.bytes),
        total > 0 ? static_cast<double>(same) / static_cast<double>(total) : 1.0, a_lo, a_hi,
        first_div / prompts, total, asked > 0 ? static_cast<double>(ok) / asked : 0.0, asked,
        tok_n > 0 ? static_cast<double>(tok_ok) / tok_n : 0.0,
        r.run_seconds > 0 ? r.profile_seconds / r.run_seconds : 0.0, r.profile_seconds,
        r.wall_seconds, counts);
    results_.flush();
    retrieval_.flush();
    heads_.flush();
    profile_.flush();
    summary_ = fmt::format("mem {:.3f}  bpb {:.4f} ({:+.4f} [{:+.4f}, {:+.4f}])  agree {:.3f}  "
                           "retr {}/{} tok {}/{}  {:.1f} s",
                           mem, bpb, bpb - bpb_full, d_lo, d_hi,
                           total > 0 ? static_cast<double>(same) / static_cast<double>(total)
                                     : 1.0,
                           ok, asked, tok_ok, tok_n, r.wall_seconds);
  }

  [[nodiscard]] auto last_summary() const -> const std::string& { return summary_; }

private:
  std::string data_;
  std::ofstream results_, retrieval_, heads_, profile_;
  std::string summary_;
};

} // namespace eval
