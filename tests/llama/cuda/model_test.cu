// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The decoder (examples/llama/model.hpp) on its CUDA backend (cuda_backend.cuh, picked by the
// device cache's memory space) against Hugging Face transformers' logits on the bundled tiny
// model, and against the same forward on the CPU backend with FastGen (the same policy choices,
// the same generated tokens, the same memory saved).
#include <algorithm>
#include <concepts>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/catch.hpp"

#include <kvsieve/cache/cuda/adaptive_cache.cuh>
#include <kvsieve/kvsieve.hpp>

#include <llama/config.hpp>
#include <llama/cuda_backend.cuh>
#include <llama/model.hpp>
#include <llama/weights.hpp>

namespace {
namespace fs = std::filesystem;
using full_ladder = kvsieve::ladder<kvsieve::policies::full>;

auto read_json(const fs::path& p) -> nlohmann::json {
  std::ifstream in(p);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

auto geometry(const llama::config& cfg) -> kvsieve::store_geometry {
  return {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
          .head_dim = cfg.head_dim, .page_size = 16,
          .max_pages = static_cast<std::size_t>(cfg.n_layer * cfg.n_head_kv *
                                                (cfg.max_position_embeddings / 16 + 1)),
          .max_context = cfg.max_position_embeddings};
}
} // namespace

TEST_CASE("CUDA decoder: the bundled tiny model matches transformers", "[cuda][llama]") {
  const auto dir = fs::path(KVSIEVE_MODELS_DIR) / "tiny-llama";
  const auto golden = read_json(fs::path(KVSIEVE_TEST_DATA_DIR) / "golden" / "tiny-llama.json");
  const auto cfg = llama::config::load(dir);
  const auto weights = llama::model_weights::load(dir, cfg);
  const auto ids = golden["prompt_ids"].get<std::vector<std::int32_t>>();
  const std::vector<kvsieve::token_class> classes(ids.size(), kvsieve::token_class::none);
  using cache_t = kvsieve::cuda::adaptive_cache<full_ladder, kvsieve::recovery_profiler, float>;
  cache_t cache(full_ladder{}, kvsieve::recovery_profiler(1.0), geometry(cfg),
                {.n_head_q = cfg.n_head});
  static_assert(std::same_as<llama::model<cache_t>::backend_type, llama::cuda_backend>);
  llama::model<cache_t> model(cfg, weights);
  const auto logits = model.prefill(cache, 0, ids, classes, /*all_logits=*/true);
  const auto vocab = static_cast<std::size_t>(cfg.vocab_size);
  REQUIRE(logits.size() == ids.size() * vocab);
  double max_diff = 0.0;
  for (std::size_t t = 0; t < ids.size(); ++t) {
    for (std::size_t i = 0; i < vocab; ++i) {
      max_diff = std::max(max_diff, std::abs(static_cast<double>(logits[t * vocab + i]) -
                                             golden["logits"][t][i].get<double>()));
    }
  }
  INFO("max |logit - transformers| = " << max_diff);
  CHECK(max_diff <= 1e-3);

  const auto greedy = golden["greedy"].get<std::vector<std::int32_t>>();
  cache.release(0);
  auto last = model.prefill(cache, 0, ids, classes);
  std::vector<std::int32_t> ours;
  for (std::size_t s = 0; s < greedy.size(); ++s) {
    const auto next =
        static_cast<std::int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    ours.push_back(next);
    last = model.decode(cache, 0, next, kvsieve::token_class::none);
  }
  CHECK(ours == greedy);
}

TEST_CASE("CUDA decoder with FastGen: the CPU decoder's choices, tokens and memory",
          "[cuda][llama][fastgen]") {
  const auto dir = fs::path(KVSIEVE_MODELS_DIR) / "tiny-llama";
  const auto cfg = llama::config::load(dir);
  const auto weights = llama::model_weights::load(dir, cfg);
  const auto ids = read_json(fs::path(KVSIEVE_TEST_DATA_DIR) / "golden" / "tiny-llama.json")
                       ["prompt_ids"].get<std::vector<std::int32_t>>();
  std::vector<kvsieve::token_class> classes(ids.size(), kvsieve::token_class::none);
  classes[0] = kvsieve::token_class::special;
  using gpu_cache =
      kvsieve::cuda::adaptive_cache<kvsieve::fastgen_ladder, kvsieve::recovery_profiler, float>;
  using cpu_cache = kvsieve::adaptive_cache<kvsieve::fastgen_ladder, kvsieve::recovery_profiler>;
  const auto g = geometry(cfg);
  gpu_cache gc(kvsieve::make_fastgen_ladder(), kvsieve::recovery_profiler(0.9), g,
               {.n_head_q = cfg.n_head});
  cpu_cache cc(kvsieve::make_fastgen_ladder(), kvsieve::recovery_profiler(0.9), g,
               {.n_head_q = cfg.n_head});
  llama::model<gpu_cache> gm(cfg, weights);
  llama::model<cpu_cache> cm(cfg, weights);
  auto a = gm.prefill(gc, 0, ids, classes);
  auto b = cm.prefill(cc, 0, ids, classes);
  for (int s = 0; s < 24; ++s) {
    const auto ta = static_cast<std::int32_t>(std::max_element(a.begin(), a.end()) - a.begin());
    const auto tb = static_cast<std::int32_t>(std::max_element(b.begin(), b.end()) - b.begin());
    REQUIRE(ta == tb);
    a = gm.decode(gc, 0, ta, kvsieve::token_class::none);
    b = cm.decode(cc, 0, tb, kvsieve::token_class::none);
  }
  const auto rg = gc.report();
  const auto rc = cc.report();
  REQUIRE(rg.heads.size() == rc.heads.size());
  for (std::size_t i = 0; i < rg.heads.size(); ++i) {
    CHECK(rg.heads[i].choice == rc.heads[i].choice);
    CHECK(rg.heads[i].kept == rc.heads[i].kept);
  }
  CHECK(rg.bytes_resident == rc.bytes_resident);
}
