// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// An inference engine that keeps its own attention kernels and its own paged K/V storage (a tiny
// block table) and asks kvsieve only which tokens to keep: FastGen per KV head through
// kvsieve::head_stepper. It runs one layer's prompt and decode steps, prints what each head kept,
// and checks every step against kvsieve::adaptive_cache on the same data (exit status 1 if they
// disagree). docs/integration.md walks through this file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <vector>

#include <kvsieve/kvsieve.hpp>

namespace {

constexpr int n_head_q = 4, n_head_kv = 2, group = n_head_q / n_head_kv, head_dim = 16;
constexpr int prompt = 96, steps = 48, block_size = 8;

// example-begin block_table
/// The engine's K/V store: fixed blocks of block_size tokens from one pool, a block table per
/// head. A head's tokens occupy slots [0, size), slot s in block table[s / block_size].
class block_pool {
public:
  auto allocate() -> int {
    if (free_.empty()) {
      data_.resize(data_.size() + block_size * 2 * head_dim);
      return static_cast<int>(data_.size() / (block_size * 2 * head_dim)) - 1;
    }
    const int b = free_.back();
    free_.pop_back();
    return b;
  }
  void release(int b) { free_.push_back(b); }
  auto key(int b, int i) -> float* { return data_.data() + (b * block_size + i) * 2 * head_dim; }
  auto value(int b, int i) -> float* { return key(b, i) + head_dim; }
  [[nodiscard]] auto blocks_in_use() const -> std::size_t {
    return data_.size() / (block_size * 2 * head_dim) - free_.size();
  }

private:
  std::vector<float> data_; // [blocks][block_size][K | V][head_dim]
  std::vector<int> free_;
};

struct paged_head {
  block_pool* pool;
  std::vector<int> table; // block ids
  int size = 0;

  auto key(int slot) -> float* { return pool->key(table[slot / block_size], slot % block_size); }
  auto value(int slot) -> float* {
    return pool->value(table[slot / block_size], slot % block_size);
  }
  void append(const float* k, const float* v) {
    if (size == static_cast<int>(table.size()) * block_size) {
      table.push_back(pool->allocate());
    }
    std::copy(k, k + head_dim, key(size));
    std::copy(v, v + head_dim, value(size));
    ++size;
  }
  /// Mirrors the stepper's eviction: apply each slot_move in order.
  void apply(std::span<const kvsieve::slot_move> moves) {
    for (const auto& m : moves) {
      if (m.moved_from >= 0) { // the last token moves into the freed slot
        std::copy(key(m.moved_from), key(m.moved_from) + head_dim, key(m.slot));
        std::copy(value(m.moved_from), value(m.moved_from) + head_dim, value(m.slot));
      }
      --size;
      if (size == (static_cast<int>(table.size()) - 1) * block_size) {
        pool->release(table.back()); // an emptied block goes back at once
        table.pop_back();
      }
    }
  }
};
// example-end block_table

/// Row-major [tokens, heads, head_dim] access.
auto at(std::vector<float>& x, int token, int heads, int head) -> float* {
  return x.data() + (token * heads + head) * head_dim;
}

auto dot(const float* a, const float* b) -> float {
  float s = 0.0F;
  for (int c = 0; c < head_dim; ++c) {
    s += a[c] * b[c];
  }
  return s;
}

} // namespace

auto main() -> int {
  const float scale = 1.0F / std::sqrt(static_cast<float>(head_dim));
  std::mt19937 rng(5);
  std::normal_distribution<float> noise(0.0F, 1.0F);
  auto random = [&](std::size_t n, float sigma) {
    std::vector<float> x(n);
    for (auto& e : x) {
      e = sigma * noise(rng);
    }
    return x;
  };
  auto q = random(prompt * n_head_q * head_dim, 2.0F);
  auto k = random(prompt * n_head_kv * head_dim, 1.0F);
  auto v = random(prompt * n_head_kv * head_dim, 1.0F);
  std::vector<kvsieve::token_class> classes(prompt, kvsieve::token_class::none);
  classes[0] = kvsieve::token_class::special;
  for (int j = 7; j < prompt; j += 9) {
    classes[static_cast<std::size_t>(j)] = kvsieve::token_class::punctuation;
  }
  std::vector<std::vector<float>> dq, dk, dv;
  std::vector<kvsieve::token_class> dclasses;
  for (int s = 0; s < steps; ++s) {
    dq.push_back(random(n_head_q * head_dim, 2.0F));
    dk.push_back(random(n_head_kv * head_dim, 1.0F));
    dv.push_back(random(n_head_kv * head_dim, 1.0F));
    dclasses.push_back(s % 11 == 3 ? kvsieve::token_class::punctuation
                                   : kvsieve::token_class::none);
  }

  // example-begin setup
  const auto ladder = kvsieve::make_fastgen_ladder({.local_ratio = 0.3, .frequent_ratio = 0.3});
  const kvsieve::recovery_profiler profiler(0.9);
  const auto windows = kvsieve::ladder_windows(ladder, prompt); // the near sums FastGen needs
  kvsieve::head_planner planner;
  std::vector<kvsieve::head_stepper> steppers(n_head_kv); // one per (sequence, layer, KV head)
  std::vector<std::size_t> choice(n_head_kv);
  block_pool pool;
  std::vector<paged_head> heads(n_head_kv, paged_head{&pool, {}, 0});
  // example-end setup

  // Prefill: the engine's causal attention, emitting per query head the column sums
  // colsum[j] = sum_i A[i, j] and, per FastGen window w, near_w[j] = sum_{j <= i < j+w} A[i, j].
  // example-begin prefill
  for (int h = 0; h < n_head_kv; ++h) {
    std::vector<kvsieve::head_stats> stats(group);
    for (int g = 0; g < group; ++g) {
      const int qh = h * group + g;
      std::vector<float> colsum(prompt, 0.0F), near(windows.size() * prompt, 0.0F), row(prompt);
      for (int i = 0; i < prompt; ++i) {
        float m = -INFINITY, sum = 0.0F;
        for (int j = 0; j <= i; ++j) {
          row[j] = scale * dot(at(q, i, n_head_q, qh), at(k, j, n_head_kv, h));
          m = std::max(m, row[j]);
        }
        for (int j = 0; j <= i; ++j) {
          row[j] = std::exp(row[j] - m);
          sum += row[j];
        }
        for (int j = 0; j <= i; ++j) {
          const float p = row[j] / sum; // (the engine also writes its output row here)
          colsum[j] += p;
          for (std::size_t w = 0; w < windows.size(); ++w) {
            near[w * prompt + j] += i < j + windows[w] ? p : 0.0F;
          }
        }
      }
      // score = colsum: every prompt row counts (cache_options::recovery_rows = 0).
      stats[g].assign(0, windows, colsum, colsum, near);
    }
    const auto& plan = planner.plan(ladder, profiler, std::span<const kvsieve::head_stats>(stats),
                                    kvsieve::group_reduce::mean, classes, 0);
    choice[h] = plan.choice;
    for (const int pos : steppers[h].prefill(plan, classes)) { // kept positions, slot order
      heads[h].append(at(k, pos, n_head_kv, h), at(v, pos, n_head_kv, h));
    }
  }
  // example-end prefill

  // The reference: the whole-cache route on the same data.
  kvsieve::adaptive_cache cache(ladder, profiler,
                                kvsieve::store_geometry{.n_seq = 1, .n_layer = 1,
                                                        .n_head_kv = n_head_kv,
                                                        .head_dim = head_dim,
                                                        .page_size = block_size},
                                kvsieve::cache_options{.n_head_q = n_head_q});
  std::vector<float> out(prompt * n_head_q * head_dim), step_out(n_head_q * head_dim);
  cache.prefill(0, 0, {q.data(), {prompt, n_head_q, head_dim}},
                {k.data(), {prompt, n_head_kv, head_dim}},
                {v.data(), {prompt, n_head_kv, head_dim}}, classes,
                {out.data(), {prompt, n_head_q, head_dim}});
  int mismatches = 0;
  auto compare = [&](int step) {
    for (int h = 0; h < n_head_kv; ++h) {
      auto mine = std::vector<int>(steppers[h].positions().begin(), steppers[h].positions().end());
      std::vector<int> theirs;
      for (int s = 0; s < cache.store().size({0, 0, h}); ++s) {
        theirs.push_back(cache.store().meta({0, 0, h}, s).position);
      }
      std::sort(mine.begin(), mine.end());
      std::sort(theirs.begin(), theirs.end());
      if (mine != theirs || choice[h] != cache.choice({0, 0, h})) {
        std::printf("step %d head %d: the stepper and adaptive_cache disagree\n", step, h);
        ++mismatches;
      }
    }
  };
  compare(0);

  // Decode: begin, the engine's attention (logits and log-sum-exp, flash style), finish.
  std::vector<float> logits, lse(group), engine_out(n_head_q * head_dim);
  float max_diff = 0.0F;
  for (int s = 0; s < steps; ++s) {
    // example-begin decode
    for (int h = 0; h < n_head_kv; ++h) {
      auto& st = steppers[h];
      auto& kv = heads[h];
      ladder.visit(choice[h], [&](const auto& policy) {
        if (st.begin(policy, dclasses[s]) >= 0) { // the slot is kv.size
          kv.append(dk[s].data() + h * head_dim, dv[s].data() + h * head_dim);
        }
        logits.assign(static_cast<std::size_t>(group * kv.size), 0.0F);
        for (int g = 0; g < group; ++g) {
          const float* qg = dq[s].data() + (h * group + g) * head_dim;
          float m = -INFINITY, sum = 0.0F;
          for (int j = 0; j < kv.size; ++j) {
            logits[g * kv.size + j] = scale * dot(qg, kv.key(j));
            m = std::max(m, logits[g * kv.size + j]);
          }
          for (int j = 0; j < kv.size; ++j) {
            sum += std::exp(logits[g * kv.size + j] - m);
          }
          lse[g] = m + std::log(sum);
          float* o = engine_out.data() + (h * group + g) * head_dim; // the head's output
          std::fill(o, o + head_dim, 0.0F);
          for (int j = 0; j < kv.size; ++j) {
            const float p = std::exp(logits[g * kv.size + j] - lse[g]);
            for (int c = 0; c < head_dim; ++c) {
              o[c] += p * kv.value(j)[c];
            }
          }
        }
        kv.apply(st.finish_from_logits(policy, logits, lse, kvsieve::group_reduce::mean));
      });
    }
    // example-end decode
    cache.decode(0, 0, {dq[s].data(), {n_head_q, head_dim}}, {dk[s].data(), {n_head_kv, head_dim}},
                 {dv[s].data(), {n_head_kv, head_dim}}, dclasses[s],
                 {step_out.data(), {n_head_q, head_dim}});
    compare(s + 1);
    for (std::size_t c = 0; c < step_out.size(); ++c) {
      max_diff = std::max(max_diff, std::abs(step_out[c] - engine_out[c]));
    }
  }

  const int seen = prompt + steps;
  int kept = 0;
  for (int h = 0; h < n_head_kv; ++h) {
    const auto name = decltype(ladder)::name(choice[h]);
    std::printf("head %d: %.*s, %d of %d tokens kept, %d evicted, %zu blocks\n", h,
                static_cast<int>(name.size()), name.data(), steppers[h].size(), seen,
                seen - steppers[h].size(), heads[h].table.size());
    kept += steppers[h].size();
  }
  std::printf("kept %d of %d tokens (%zu blocks in use); %s adaptive_cache at every step\n", kept,
              seen * n_head_kv, pool.blocks_in_use(), mismatches == 0 ? "agrees with" : "DIFFERS from");
  std::printf("largest difference of the attention outputs: %.2g\n", max_diff);
  if (max_diff > 1e-4F) {
    std::printf("the engine's attention outputs DIFFER from adaptive_cache's\n");
    ++mismatches;
  }
  return mismatches == 0 ? 0 : 1;
}
