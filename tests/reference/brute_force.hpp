// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Brute-force references the tests compare the library with: the materialised L x L attention,
/// recovered mass from an explicit mask, a naive keep-set selection (full sort), and a naive
/// FastGen decode simulator that recomputes every decision by full scans in double precision.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <type_traits>
#include <vector>

#include <kvsieve/kvsieve.hpp>

namespace kvsieve::reference {

/// The budget's rank key written out from policy/ranking.hpp's table (independently of
/// score_rule::key): mean divides by the queries that saw the token; the others rank the score.
template <class Rank>
auto rule_key(const Rank& rank, double score, std::int32_t pos, std::int32_t t) -> double {
  if constexpr (std::is_same_v<Rank, score_rule>) {
    return rank.mode == score_mode::mean ? score / static_cast<double>(t - pos) : score;
  } else {
    return rank.key(score, pos, t);
  }
}
/// The score after a step that gave the token probability p (double, unlike the cache's float).
template <class Rank>
auto rule_update(const Rank& rank, double score, double p) -> double {
  if constexpr (std::is_same_v<Rank, score_rule>) {
    switch (rank.mode) {
    case score_mode::latest:
      return p;
    case score_mode::decayed:
      return static_cast<double>(rank.decay) * score + p;
    default:
      return score + p;
    }
  } else {
    return rank.update(static_cast<float>(score), static_cast<float>(p));
  }
}

/// Random normal tensor data.
inline auto random_vector(std::size_t n, std::mt19937& rng, float sigma = 1.0F)
    -> std::vector<float> {
  std::normal_distribution<float> nd(0.0F, sigma);
  std::vector<float> out(n);
  for (auto& x : out) {
    x = nd(rng);
  }
  return out;
}

/// A[i][j] = softmax_j<=i(scale * q_i . k_j) for one query head of q [L, hq, d] and its KV head
/// of k [L, hkv, d]. Row-major L x L, zero above the diagonal.
inline auto attention_matrix(const std::vector<float>& q, const std::vector<float>& k,
                             std::int32_t length, std::int32_t hq, std::int32_t hkv,
                             std::int32_t d, std::int32_t q_head, std::int32_t kv_head,
                             double scale) -> std::vector<double> {
  const auto n = static_cast<std::size_t>(length);
  std::vector<double> a(n * n, 0.0);
  for (std::int32_t i = 0; i < length; ++i) {
    double m = -1e300;
    for (std::int32_t j = 0; j <= i; ++j) {
      double dot = 0.0;
      for (std::int32_t c = 0; c < d; ++c) {
        dot += static_cast<double>(q[static_cast<std::size_t>((i * hq + q_head) * d + c)]) *
               static_cast<double>(k[static_cast<std::size_t>((j * hkv + kv_head) * d + c)]);
      }
      a[static_cast<std::size_t>(i) * n + static_cast<std::size_t>(j)] = dot * scale;
      m = std::max(m, dot * scale);
    }
    double sum = 0.0;
    for (std::int32_t j = 0; j <= i; ++j) {
      auto& x = a[static_cast<std::size_t>(i) * n + static_cast<std::size_t>(j)];
      x = std::exp(x - m);
      sum += x;
    }
    for (std::int32_t j = 0; j <= i; ++j) {
      a[static_cast<std::size_t>(i) * n + static_cast<std::size_t>(j)] /= sum;
    }
  }
  return a;
}

/// (1/rows) sum over rows i >= first_row of sum_j A[i][j] * M[i][j], with
/// M[i][j] = kept_static[j] || (window > 0 && i - window < j <= i).
inline auto recovered_mass(const std::vector<double>& a, std::int32_t length,
                           const std::vector<bool>& kept_static, std::int32_t window,
                           std::int32_t first_row = 0) -> double {
  const auto n = static_cast<std::size_t>(length);
  double mass = 0.0;
  for (std::int32_t i = first_row; i < length; ++i) {
    for (std::int32_t j = 0; j <= i; ++j) {
      const bool keep = kept_static[static_cast<std::size_t>(j)] || (window > 0 && j > i - window);
      mass += keep ? a[static_cast<std::size_t>(i) * n + static_cast<std::size_t>(j)] : 0.0;
    }
  }
  return mass / static_cast<double>(length - first_row);
}

/// Naive batch keep set: rule (or sink), then window, then the budget by a full sort.
template <policy P>
auto naive_keep(const P& p, const std::vector<token_class>& classes,
                const std::vector<double>& scores, std::int32_t n_sinks)
    -> std::vector<keep_reason> {
  const auto length = static_cast<std::int32_t>(classes.size());
  const step_context ctx{length, length};
  const std::int32_t w = std::clamp(window_of(p, ctx), 0, length);
  std::vector<keep_reason> out(classes.size(), keep_reason::evicted);
  std::vector<std::int32_t> rest;
  for (std::int32_t j = 0; j < length; ++j) {
    if (j < n_sinks || p.keeps({j, classes[static_cast<std::size_t>(j)]}, ctx)) {
      out[static_cast<std::size_t>(j)] = keep_reason::rule;
    } else if (j >= length - w) {
      out[static_cast<std::size_t>(j)] = keep_reason::window;
    } else {
      rest.push_back(j);
    }
  }
  const auto rank = ranking_of(p);
  auto key = [&](std::int32_t j) {
    return rule_key(rank, scores[static_cast<std::size_t>(j)], j, length);
  };
  std::sort(rest.begin(), rest.end(), [&](std::int32_t a, std::int32_t b) {
    return key(a) > key(b) || (key(a) == key(b) && a > b);
  });
  const auto k = std::min<std::size_t>(static_cast<std::size_t>(std::max(budget_of(p, ctx), 0)),
                                       rest.size());
  for (std::size_t i = 0; i < k; ++i) {
    out[static_cast<std::size_t>(rest[i])] = keep_reason::budget;
  }
  return out;
}

/// One KV head simulated naively: every decision recomputed from scratch each step.
template <policy P>
class naive_head {
public:
  struct token {
    std::int32_t pos;
    token_class cls;
    std::vector<float> k, v;
    double score;
    keep_reason reason;
  };

  naive_head(P p, std::int32_t group, std::int32_t d, double scale, cache_options opt)
      : p_(std::move(p)), group_(group), d_(d), scale_(scale), opt_(opt) {}

  /// prompt k/v rows of this head ([L][d] each), classes, combined scores.
  void prefill(const std::vector<std::vector<float>>& k, const std::vector<std::vector<float>>& v,
               const std::vector<token_class>& classes, const std::vector<double>& scores) {
    length_ = prompt_ = static_cast<std::int32_t>(classes.size());
    const auto reasons = naive_keep(p_, classes, scores, opt_.n_sinks);
    const std::int32_t w = std::clamp(window_of(p_, {length_, length_}), 0, length_);
    window_begin_ = length_ - w;
    tokens_.clear();
    for (std::int32_t j = 0; j < length_; ++j) {
      const auto r = reasons[static_cast<std::size_t>(j)];
      if (r != keep_reason::evicted) {
        tokens_.push_back({j, classes[static_cast<std::size_t>(j)], k[static_cast<std::size_t>(j)],
                           v[static_cast<std::size_t>(j)], scores[static_cast<std::size_t>(j)], r});
      }
    }
  }

  /// One decode step; q is [group][d]; returns out [group][d] in double.
  auto decode(const std::vector<float>& q, const std::vector<float>& k,
              const std::vector<float>& v, token_class cls) -> std::vector<double> {
    if (opt_.generated == generated_class_mode::frozen) {
      cls = token_class::none;
    }
    const std::int32_t t = length_ + 1;
    const std::int32_t pos = t - 1;
    const step_context ctx{t, prompt_};
    const bool rule = pos < opt_.n_sinks || p_.keeps({pos, cls}, ctx);
    const std::int32_t w = std::clamp(window_of(p_, ctx), 0, t);
    const std::int32_t budget = std::max(budget_of(p_, ctx), 0);
    const bool drop = opt_.new_token == new_token_mode::drop_before_attention && !rule &&
                      w == 0 && budget == 0 && !tokens_.empty();
    if (!drop) {
      tokens_.push_back({pos, cls, k, v, 0.0, keep_reason::evicted});
    }
    const auto g = static_cast<std::size_t>(group_);
    const auto d = static_cast<std::size_t>(d_);
    std::vector<double> out(g * d, 0.0);
    std::vector<double> agg(tokens_.size(), opt_.group == group_reduce::mean ? 0.0 : -1.0);
    for (std::size_t h = 0; h < g; ++h) {
      std::vector<double> logit(tokens_.size());
      double m = -1e300;
      for (std::size_t j = 0; j < tokens_.size(); ++j) {
        double dot = 0.0;
        for (std::size_t c = 0; c < d; ++c) {
          dot += static_cast<double>(q[h * d + c]) * static_cast<double>(tokens_[j].k[c]);
        }
        logit[j] = dot * scale_;
        m = std::max(m, logit[j]);
      }
      double sum = 0.0;
      for (auto& x : logit) {
        x = std::exp(x - m);
        sum += x;
      }
      for (std::size_t j = 0; j < tokens_.size(); ++j) {
        const double pj = logit[j] / sum;
        for (std::size_t c = 0; c < d; ++c) {
          out[h * d + c] += pj * static_cast<double>(tokens_[j].v[c]);
        }
        agg[j] = opt_.group == group_reduce::mean ? agg[j] + pj / static_cast<double>(g)
                                                  : std::max(agg[j], pj);
      }
    }
    const auto rank = ranking_of(p_);
    for (std::size_t j = 0; j < tokens_.size(); ++j) {
      tokens_[j].score = rule_update(rank, tokens_[j].score, agg[j]);
    }
    const std::int32_t new_begin = std::max(window_begin_, t - w);
    for (auto& tok : tokens_) {
      if (tok.reason == keep_reason::rule) {
        continue;
      }
      if (tok.pos == pos) {
        tok.reason = rule ? keep_reason::rule
                          : (pos >= new_begin ? keep_reason::window
                                              : (budget > 0 ? keep_reason::budget
                                                            : keep_reason::evicted));
      } else if (tok.reason == keep_reason::window && tok.pos < new_begin) {
        tok.reason = budget > 0 ? keep_reason::budget : keep_reason::evicted;
      }
    }
    window_begin_ = new_begin;
    std::erase_if(tokens_, [](const token& x) { return x.reason == keep_reason::evicted; });
    auto key = [&](const token& x) { return rule_key(rank, x.score, x.pos, t); };
    for (;;) {
      const auto members = std::count_if(tokens_.begin(), tokens_.end(), [](const token& x) {
        return x.reason == keep_reason::budget;
      });
      if (members <= budget) {
        break;
      }
      auto victim = tokens_.end();
      for (auto it = tokens_.begin(); it != tokens_.end(); ++it) {
        if (it->reason == keep_reason::budget &&
            (victim == tokens_.end() || key(*it) < key(*victim) ||
             (key(*it) == key(*victim) && it->pos < victim->pos))) {
          victim = it;
        }
      }
      tokens_.erase(victim);
    }
    length_ = t;
    return out;
  }

  /// Sorted positions of the resident tokens.
  [[nodiscard]] auto positions() const -> std::vector<std::int32_t> {
    std::vector<std::int32_t> out;
    for (const auto& x : tokens_) {
      out.push_back(x.pos);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  [[nodiscard]] auto tokens() const -> const std::vector<token>& { return tokens_; }

private:
  P p_;
  std::int32_t group_;
  std::int32_t d_;
  double scale_;
  cache_options opt_;
  std::int32_t length_ = 0;
  std::int32_t prompt_ = 0;
  std::int32_t window_begin_ = 0;
  std::vector<token> tokens_;
};

/// Sorted positions resident in one head of a store.
template <class Store>
auto store_positions(const Store& store, head_id h) -> std::vector<std::int32_t> {
  std::vector<std::int32_t> out;
  for (std::int32_t s = 0; s < store.size(h); ++s) {
    out.push_back(store.meta(h, s).position);
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace kvsieve::reference
