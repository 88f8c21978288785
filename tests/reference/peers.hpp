// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Brute-force references for the field's eviction policies, written from each paper's
/// definition (not from kvsieve's normal form): the prompt's full attention matrix in double,
/// the keep sets by full sorts, decode by plain attention over the kept tokens. One KV head;
/// its query heads' probabilities are averaged (the papers' multi-head attention is group 1).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include <reference/brute_force.hpp>

namespace kvsieve::reference::peers {

/// One KV head's data: the prompt and the decode steps.
struct head_data {
  std::int32_t length = 0, group = 1, d = 8;
  std::vector<float> q, k, v;              // [L, group, d], [L, d], [L, d]
  std::vector<std::vector<float>> dq, dk, dv; // per step: [group, d], [d], [d]
};

inline auto make_head(std::int32_t length, std::int32_t group, std::int32_t d, std::int32_t steps,
                      std::mt19937& rng, float sigma = 1.5F) -> head_data {
  head_data h{length, group, d, {}, {}, {}, {}, {}, {}};
  const auto n = static_cast<std::size_t>(length);
  const auto g = static_cast<std::size_t>(group);
  const auto dd = static_cast<std::size_t>(d);
  h.q = random_vector(n * g * dd, rng, sigma);
  h.k = random_vector(n * dd, rng, sigma);
  h.v = random_vector(n * dd, rng);
  for (std::int32_t s = 0; s < steps; ++s) {
    h.dq.push_back(random_vector(g * dd, rng, sigma));
    h.dk.push_back(random_vector(dd, rng, sigma));
    h.dv.push_back(random_vector(dd, rng));
  }
  return h;
}

/// The group's mean prompt attention, A[i][j], L x L.
inline auto prompt_attention(const head_data& h, double scale) -> std::vector<std::vector<double>> {
  const auto n = static_cast<std::size_t>(h.length);
  std::vector<std::vector<double>> a(n, std::vector<double>(n, 0.0));
  for (std::int32_t g = 0; g < h.group; ++g) {
    const auto m = attention_matrix(h.q, h.k, h.length, h.group, 1, h.d, g, 0, scale);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        a[i][j] += m[i * n + j] / static_cast<double>(h.group);
      }
    }
  }
  return a;
}

/// A head during decode: the kept tokens (position -> key, value), plain attention over them.
class decoder {
public:
  decoder(const head_data& h, double scale) : h_(h), scale_(scale) {}

  void keep_prompt(const std::set<std::int32_t>& kept) {
    tokens_.clear();
    for (const std::int32_t j : kept) {
      const auto o = static_cast<std::size_t>(j * h_.d);
      tokens_.push_back({j, {h_.k.begin() + static_cast<std::ptrdiff_t>(o),
                             h_.k.begin() + static_cast<std::ptrdiff_t>(o + static_cast<std::size_t>(h_.d))},
                         {h_.v.begin() + static_cast<std::ptrdiff_t>(o),
                          h_.v.begin() + static_cast<std::ptrdiff_t>(o + static_cast<std::size_t>(h_.d))}});
    }
  }

  /// Appends step s's token at `position`, attends: returns the outputs [group, d] and fills
  /// `probs` (position -> the group's mean probability) over every token, the new one included.
  auto step(std::int32_t s, std::int32_t position, std::vector<std::pair<std::int32_t, double>>& probs)
      -> std::vector<double> {
    tokens_.push_back({position, h_.dk[static_cast<std::size_t>(s)], h_.dv[static_cast<std::size_t>(s)]});
    const auto dd = static_cast<std::size_t>(h_.d);
    std::vector<double> out(static_cast<std::size_t>(h_.group) * dd, 0.0);
    std::vector<double> mean(tokens_.size(), 0.0);
    for (std::size_t g = 0; g < static_cast<std::size_t>(h_.group); ++g) {
      std::vector<double> logit(tokens_.size());
      for (std::size_t j = 0; j < tokens_.size(); ++j) {
        double dot = 0.0;
        for (std::size_t c = 0; c < dd; ++c) {
          dot += static_cast<double>(h_.dq[static_cast<std::size_t>(s)][g * dd + c]) *
                 static_cast<double>(tokens_[j].k[c]);
        }
        logit[j] = dot * scale_;
      }
      const double m = *std::max_element(logit.begin(), logit.end());
      double sum = 0.0;
      for (auto& x : logit) {
        x = std::exp(x - m);
        sum += x;
      }
      for (std::size_t j = 0; j < tokens_.size(); ++j) {
        const double p = logit[j] / sum;
        mean[j] += p / static_cast<double>(h_.group);
        for (std::size_t c = 0; c < dd; ++c) {
          out[g * dd + c] += p * static_cast<double>(tokens_[j].v[c]);
        }
      }
    }
    probs.clear();
    for (std::size_t j = 0; j < tokens_.size(); ++j) {
      probs.emplace_back(tokens_[j].pos, mean[j]);
    }
    return out;
  }

  void evict(std::int32_t position) {
    std::erase_if(tokens_, [&](const tok& t) { return t.pos == position; });
  }
  [[nodiscard]] auto positions() const -> std::vector<std::int32_t> {
    std::vector<std::int32_t> out;
    for (const auto& t : tokens_) {
      out.push_back(t.pos);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

private:
  struct tok {
    std::int32_t pos;
    std::vector<float> k, v;
  };
  const head_data& h_;
  double scale_;
  std::vector<tok> tokens_;
};

/// The `k` indices of `score` with the largest values (on a tie the later index wins: older
/// tokens leave first), over the candidates `among`.
inline auto top_k(const std::vector<std::int32_t>& among, const std::function<double(std::int32_t)>& score,
                  std::size_t k) -> std::set<std::int32_t> {
  std::vector<std::int32_t> c = among;
  std::sort(c.begin(), c.end(), [&](std::int32_t a, std::int32_t b) {
    return score(a) > score(b) || (score(a) == score(b) && a > b);
  });
  c.resize(std::min(k, c.size()));
  return {c.begin(), c.end()};
}

/// SnapKV's prompt score (Li et al. 2024, Alg. 1): the observation window's rows summed for
/// every key before the window, pooled (max or avg, kernel k, padding k/2, avg dividing by k).
inline auto snapkv_scores(const std::vector<std::vector<double>>& a, std::int32_t window,
                          std::int32_t kernel, bool max_pool) -> std::vector<double> {
  const auto length = static_cast<std::int32_t>(a.size());
  const std::int32_t prefix = std::max(0, length - window);
  std::vector<double> raw(static_cast<std::size_t>(prefix), 0.0);
  for (std::int32_t i = prefix; i < length; ++i) {
    for (std::int32_t j = 0; j < prefix; ++j) {
      raw[static_cast<std::size_t>(j)] += a[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
    }
  }
  std::vector<double> pooled(raw.size());
  for (std::int32_t j = 0; j < prefix; ++j) {
    double acc = max_pool ? -1.0 : 0.0;
    for (std::int32_t m = j - kernel / 2; m <= j + kernel / 2; ++m) {
      const double x = m >= 0 && m < prefix ? raw[static_cast<std::size_t>(m)] : 0.0; // zero pad
      if (max_pool && (m < 0 || m >= prefix)) {
        continue; // max_pool1d pads with -inf
      }
      acc = max_pool ? std::max(acc, x) : acc + x;
    }
    pooled[static_cast<std::size_t>(j)] = max_pool ? acc : acc / kernel;
  }
  return pooled;
}

/// SnapKV's prompt keep set for a given budget: the top `budget` of the pooled scores plus the
/// window.
inline auto snapkv_keep(const std::vector<double>& pooled, std::int32_t length, std::int32_t window,
                        std::int32_t budget) -> std::set<std::int32_t> {
  std::vector<std::int32_t> prefix(pooled.size());
  std::iota(prefix.begin(), prefix.end(), 0);
  auto kept = top_k(prefix, [&](std::int32_t j) { return pooled[static_cast<std::size_t>(j)]; },
                    static_cast<std::size_t>(budget));
  for (std::int32_t j = std::max(0, length - window); j < length; ++j) {
    kept.insert(j);
  }
  return kept;
}

} // namespace kvsieve::reference::peers
