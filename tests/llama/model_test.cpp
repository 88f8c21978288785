// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The decoder against Hugging Face transformers: fp32 logits of every prompt position within
// 1e-4 and the exact greedy continuation, with the full cache; golden files are written by
// tools/reference_logits.py (tiny-llama: the bundled GQA model; random-mha: MHA, head_dim 16,
// tied embeddings, rope_theta 5e5, BF16 weights); rope-parameters, written by transformers 5
// (tools/transformers5_fixture.py): theta 5e5 given only as rope_parameters, GQA, two shards.
#include <common/catch.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <kvsieve/kvsieve.hpp>

#include <llama/config.hpp>
#include <llama/model.hpp>
#include <llama/tokenizer.hpp>
#include <llama/weights.hpp>

namespace {
namespace fs = std::filesystem;
using full_cache = kvsieve::adaptive_cache<kvsieve::ladder<kvsieve::policies::full>,
                                           kvsieve::recovery_profiler>;
using fastgen_cache = kvsieve::adaptive_cache<kvsieve::fastgen_ladder, kvsieve::recovery_profiler>;
// A host cache picks the CPU backend; naming it is the same model (one forward, model.hpp).
static_assert(std::same_as<llama::model<full_cache>::backend_type, llama::cpu_backend>);
static_assert(std::same_as<llama::model<full_cache>,
                           llama::model<full_cache, llama::backend_for_t<kvsieve::host_space>>>);

auto read_json(const fs::path& p) -> nlohmann::json {
  std::ifstream in(p);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

template <class Cache, class Ladder>
auto make_cache(const llama::config& cfg, Ladder ladder, double threshold = 0.95) -> Cache {
  return Cache(std::move(ladder), kvsieve::recovery_profiler(threshold),
               {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
                .head_dim = cfg.head_dim, .page_size = 16},
               {.n_head_q = cfg.n_head});
}

// The largest |logit - transformers'| over every prompt position, for `cfg`. A golden file may
// keep every `logit_stride`-th logit of a row (a large vocabulary) and then also gives each
// row's argmax over the whole vocabulary, which must agree.
auto max_logit_diff(const fs::path& model_dir, const llama::config& cfg,
                    const nlohmann::json& golden) -> double {
  const auto weights = llama::model_weights::load(model_dir, cfg);
  const auto ids = golden["prompt_ids"].get<std::vector<std::int32_t>>();
  const std::vector<kvsieve::token_class> classes(ids.size(), kvsieve::token_class::none);
  auto cache = make_cache<full_cache>(cfg, kvsieve::ladder<kvsieve::policies::full>());
  llama::model<full_cache> model(cfg, weights);
  const auto logits = model.prefill(cache, 0, ids, classes, /*all_logits=*/true);
  const auto& expect = golden["logits"];
  const auto vocab = static_cast<std::size_t>(cfg.vocab_size);
  const auto stride = golden.value("logit_stride", std::size_t{1});
  REQUIRE(logits.size() == ids.size() * vocab);
  double max_diff = 0.0;
  for (std::size_t t = 0; t < ids.size(); ++t) {
    const auto* row = logits.data() + t * vocab;
    REQUIRE(expect[t].size() == (vocab + stride - 1) / stride);
    for (std::size_t k = 0; k < expect[t].size(); ++k) {
      max_diff = std::max(max_diff, std::abs(static_cast<double>(row[k * stride]) -
                                             expect[t][k].get<double>()));
    }
    if (golden.contains("argmax")) {
      INFO("argmax of prompt position " << t);
      CHECK(std::max_element(row, row + vocab) - row == golden["argmax"][t].get<std::int32_t>());
    }
  }
  return max_diff;
}

// `n` greedy tokens after the prompt `ids`, token by token through a fresh full cache.
auto greedy_continuation(llama::model<full_cache>& model, const llama::config& cfg,
                         const std::vector<std::int32_t>& ids, std::size_t n)
    -> std::vector<std::int32_t> {
  const std::vector<kvsieve::token_class> classes(ids.size(), kvsieve::token_class::none);
  auto cache = make_cache<full_cache>(cfg, kvsieve::ladder<kvsieve::policies::full>());
  auto last = model.prefill(cache, 0, ids, classes);
  std::vector<std::int32_t> out;
  for (std::size_t s = 0; s < n; ++s) {
    const auto next = static_cast<std::int32_t>(std::max_element(last.begin(), last.end()) -
                                                last.begin());
    out.push_back(next);
    last = model.decode(cache, 0, next, kvsieve::token_class::none);
  }
  return out;
}

void check_golden(const fs::path& model_dir, const fs::path& golden_file) {
  const auto golden = read_json(golden_file);
  const auto cfg = llama::config::load(model_dir);
  const double max_diff = max_logit_diff(model_dir, cfg, golden);
  INFO("max |logit - transformers| = " << max_diff);
  CHECK(max_diff <= 1e-4);

  const auto weights = llama::model_weights::load(model_dir, cfg);
  const auto ids = golden["prompt_ids"].get<std::vector<std::int32_t>>();
  llama::model<full_cache> model(cfg, weights);
  const auto greedy = golden["greedy"].get<std::vector<std::int32_t>>();
  CHECK(greedy_continuation(model, cfg, ids, greedy.size()) == greedy);
}
} // namespace

TEST_CASE("random MHA model (BF16, tied, head_dim 16, theta 5e5) matches transformers",
          "[llama][golden]") {
  check_golden(fs::path(KVSIEVE_TEST_DATA_DIR) / "random-mha",
               fs::path(KVSIEVE_TEST_DATA_DIR) / "golden" / "random-mha.json");
}

TEST_CASE("a transformers-5 checkpoint (rope_parameters only, sharded) matches transformers",
          "[llama][golden]") {
  const auto dir = fs::path(KVSIEVE_TEST_DATA_DIR) / "rope-parameters";
  const auto golden_file = fs::path(KVSIEVE_TEST_DATA_DIR) / "golden" / "rope-parameters.json";
  // The fixture is in transformers 5's spelling: theta only inside rope_parameters.
  const auto written = read_json(dir / "config.json");
  REQUIRE_FALSE(written.contains("rope_theta"));
  REQUIRE(written["rope_parameters"]["rope_theta"].get<double>() == 500000.0);
  REQUIRE(fs::exists(dir / "model.safetensors.index.json"));

  auto cfg = llama::config::load(dir);
  CHECK(cfg.rope_theta == 500000.0F);
  check_golden(dir, golden_file);

  // The loader's theta matters: the old default 10000 is far off transformers' logits.
  const auto golden = read_json(golden_file);
  const double right = max_logit_diff(dir, cfg, golden);
  cfg.rope_theta = 10000.0F;
  const double wrong = max_logit_diff(dir, cfg, golden);
  INFO("max diff at theta 5e5: " << right << ", at theta 1e4: " << wrong);
  CHECK(right <= 1e-4);
  CHECK(wrong > 0.1);
}

TEST_CASE("the bundled tiny model matches transformers", "[llama][golden]") {
  const fs::path golden = fs::path(KVSIEVE_TEST_DATA_DIR) / "golden" / "tiny-llama.json";
  REQUIRE(fs::exists(golden));
  check_golden(fs::path(KVSIEVE_MODELS_DIR) / "tiny-llama", golden);
}

// The second bundled model (issue 13): SentencePiece (8000 pieces, byte fallback), GQA, tied
// embeddings, BF16 weights. Golden file by tools/model2/golden.py: the prompt's ids from the
// Python sentencepiece binding, every 32nd logit of each prompt position, each position's argmax
// over the whole row, and the greedy continuation.
TEST_CASE("the docs-llama model (SentencePiece, 8000 pieces) matches transformers",
          "[llama][golden]") {
  const fs::path dir = fs::path(KVSIEVE_MODELS_DIR) / "docs-llama";
  const fs::path golden_file = fs::path(KVSIEVE_TEST_DATA_DIR) / "golden" / "docs-llama.json";
  const auto golden = read_json(golden_file);
  const auto cfg = llama::config::load(dir);
  const auto tok = llama::tokenizer::load(dir, cfg.vocab_size, cfg.bos_token_id,
                                          cfg.eos_token_ids);
  CHECK(tok.encode(golden["prompt"].get<std::string>(), /*add_bos=*/true) ==
        golden["prompt_ids"].get<std::vector<std::int32_t>>());
  check_golden(dir, golden_file);
}

TEST_CASE("FastGen's prefill logits equal the full cache's; decode differs only by eviction",
          "[llama][fastgen]") {
  const fs::path dir = fs::path(KVSIEVE_TEST_DATA_DIR) / "random-mha";
  const auto cfg = llama::config::load(dir);
  const auto weights = llama::model_weights::load(dir, cfg);
  const auto ids = read_json(fs::path(KVSIEVE_TEST_DATA_DIR) / "golden" / "random-mha.json")
                       ["prompt_ids"].get<std::vector<std::int32_t>>();
  std::vector<kvsieve::token_class> classes(ids.size(), kvsieve::token_class::none);
  classes[0] = kvsieve::token_class::special;
  auto full = make_cache<full_cache>(cfg, kvsieve::ladder<kvsieve::policies::full>());
  auto fast = make_cache<fastgen_cache>(cfg, kvsieve::make_fastgen_ladder(), 1.0);
  llama::model<full_cache> m_full(cfg, weights);
  llama::model<fastgen_cache> m_fast(cfg, weights);
  const auto a = m_full.prefill(full, 0, ids, classes);
  const auto b = m_fast.prefill(fast, 0, ids, classes);
  CHECK(a == b); // prefill attends over the whole prompt in both
  // T = 1 keeps everything: every head picks full, so decoding is identical too.
  for (const auto& h : fast.report().heads) {
    CHECK(h.policy == "full");
  }
  CHECK(m_full.decode(full, 0, 5, kvsieve::token_class::none) ==
        m_fast.decode(fast, 0, 5, kvsieve::token_class::none));
}

TEST_CASE("the logits do not depend on the decoder's thread count", "[llama][threads]") {
  // Products are split by output rows over the pool, each output row one dot product (BLAS for
  // the prompt, matvec for a token): any split (3 threads leave ragged chunks that straddle q/k/v)
  // must give the single thread's bits, also with the pool shared by the cache's attention.
  const fs::path dir = fs::path(KVSIEVE_MODELS_DIR) / "tiny-llama";
  const auto cfg = llama::config::load(dir);
  const auto weights = llama::model_weights::load(dir, cfg);
  const auto ids = read_json(fs::path(KVSIEVE_TEST_DATA_DIR) / "golden" / "tiny-llama.json")
                       ["prompt_ids"].get<std::vector<std::int32_t>>();
  const std::vector<kvsieve::token_class> classes(ids.size(), kvsieve::token_class::none);
  const auto run = [&](full_cache& cache, llama::model<full_cache>& model) {
    auto all = model.prefill(cache, 0, ids, classes, /*all_logits=*/true);
    for (std::int32_t t = 0; t < 8; ++t) {
      const auto step = model.decode(cache, 0, 40 + t, kvsieve::token_class::none);
      all.insert(all.end(), step.begin(), step.end());
    }
    return all;
  };
  std::vector<std::vector<float>> runs;
  for (const std::size_t threads : {1, 2, 3}) {
    auto cache = make_cache<full_cache>(cfg, kvsieve::ladder<kvsieve::policies::full>());
    llama::model<full_cache> model(cfg, weights, threads);
    REQUIRE(model.threads() == threads);
    runs.push_back(run(cache, model));
  }
  kvsieve::thread_pool pool(2);
  full_cache shared(kvsieve::ladder<kvsieve::policies::full>(), kvsieve::recovery_profiler(0.95),
                    {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
                     .head_dim = cfg.head_dim, .page_size = 16},
                    {.n_head_q = cfg.n_head, .threads = &pool});
  llama::model<full_cache> borrowing(cfg, weights, pool);
  CHECK(&borrowing.pool() == &pool);
  runs.push_back(run(shared, borrowing));
  CHECK(runs[1] == runs[0]);
  CHECK(runs[2] == runs[0]);
  CHECK(runs[3] == runs[0]);
}
