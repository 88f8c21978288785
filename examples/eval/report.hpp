// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// CSV output of kvsieve-eval (columns documented in docs/results.md):
///   results.csv    one row per configuration: memory, quality, agreement, retrieval, cost
///   retrieval.csv  one row per configuration x context length
///   heads.csv      one row per configuration x layer x ladder candidate: share of KV heads
///   profile.csv    one row per configuration x generation length: profiling time share

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include <kvsieve/kvsieve.hpp>

#include "configs.hpp"
#include "runner.hpp"

namespace eval {

inline constexpr const char* results_header =
    "group,method,config,threshold,local_ratio,frequent_ratio,window,sinks,window_base,score,"
    "gqa,kv_mem_mean,kv_saved_mean,kv_saved_final,mean_kept_fraction,bpb,bpb_full,bpb_delta,"
    "scored_bytes,gen_agreement,gen_first_divergence,gen_tokens,retrieval_accuracy,"
    "retrieval_questions,retrieval_token_accuracy,profile_share,profile_seconds,wall_seconds,policy_counts";

class report_writer {
public:
  explicit report_writer(const std::filesystem::path& dir)
      : results_(dir / "results.csv"), retrieval_(dir / "retrieval.csv"),
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
    for (std::size_t p = 0; p < r.generated.size() && p < ref.generated.size(); ++p) {
      const auto& a = r.generated[p];
      const auto& b = ref.generated[p];
      const std::size_t n = std::min(a.size(), b.size());
      std::size_t first = n;
      for (std::size_t i = 0; i < n; ++i) {
        if (a[i] == b[i]) {
          ++same;
        } else if (first == n) {
          first = i;
        }
      }
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
    results_ << fmt::format(
        "{},{},{},{:.2f},{:.3f},{:.3f},{},{},{},{},{},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f},"
        "{:.5f},{},{:.4f},{:.2f},{},{:.4f},{},{:.4f},{:.6f},{:.5f},{:.2f},{}\n",
        spec.group, spec.method, name, spec.threshold, pr.local_ratio, pr.frequent_ratio,
        spec.window, spec.options.n_sinks,
        pr.window_base == kvsieve::length_base::current ? "current" : "prompt",
        pr.ranking == kvsieve::score_mode::cumulative ? "cumulative" : "mean",
        spec.options.group == kvsieve::group_reduce::mean ? "mean" : "worst", mem, 1.0 - mem,
        r.final_saved_sum / items, r.kept_fraction_sum / items, bpb, bpb_full, bpb - bpb_full,
        static_cast<std::int64_t>(r.bytes),
        total > 0 ? static_cast<double>(same) / static_cast<double>(total) : 1.0,
        first_div / prompts, total, asked > 0 ? static_cast<double>(ok) / asked : 0.0, asked,
        tok_n > 0 ? static_cast<double>(tok_ok) / tok_n : 0.0,
        r.run_seconds > 0 ? r.profile_seconds / r.run_seconds : 0.0, r.profile_seconds,
        r.wall_seconds, counts);
    results_.flush();
    retrieval_.flush();
    heads_.flush();
    profile_.flush();
    summary_ = fmt::format("mem {:.3f}  bpb {:.4f} ({:+.4f})  agree {:.3f}  retr {}/{} tok {}/{}  {:.1f} s",
                           mem, bpb, bpb - bpb_full,
                           total > 0 ? static_cast<double>(same) / static_cast<double>(total)
                                     : 1.0,
                           ok, asked, tok_ok, tok_n, r.wall_seconds);
  }

  [[nodiscard]] auto last_summary() const -> const std::string& { return summary_; }

private:
  std::ofstream results_, retrieval_, heads_, profile_;
  std::string summary_;
};

} // namespace eval
