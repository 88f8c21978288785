// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve-generate: the reference LLaMA decoder generating through a kvsieve cache on the CPU.
// It streams the text, then reports the KV memory FastGen (or another policy) saved, the
// per-layer x per-KV-head policy map, speeds and the profiling cost. `--help` lists the options.
// Compiled by nvcc (generate_cuda.cu includes this file) it is kvsieve-generate-cuda: the same
// program with the model and the cache on the GPU; only the backend table below differs.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <kvsieve/kvsieve.hpp>

#include <llama/config.hpp>
#include <llama/model.hpp>
#include <llama/sampler.hpp>
#include <llama/tokenizer.hpp>
#include <llama/weights.hpp>

#if KVSIEVE_HAS_CUDA
#include <kvsieve/cache/cuda/adaptive_cache.cuh>
#include <llama/cuda_model.cuh>
#endif

namespace {

// ---- backend table: the only place the CPU and CUDA programs differ -------------------------
using profiler_type = kvsieve::recovery_profiler; // FastGen Eq. 1
constexpr std::int32_t page_size = 16;
#if KVSIEVE_HAS_CUDA
constexpr const char* program = "kvsieve-generate-cuda";
using element_type = kvsieve::bfloat16; // KV storage element: half the bytes of float
template <class Ladder>
using cache_type = kvsieve::cuda::adaptive_cache<Ladder, profiler_type, element_type>;
template <class Cache>
using model_type = llama::gpu::model<Cache>;
template <class Ladder>
auto make_cache(Ladder ladder, double threshold, const llama::config& cfg, std::int32_t sinks)
    -> cache_type<Ladder> {
  // The device pool holds a full cache of the whole context: eviction frees pages, never needs
  // them.
  const auto pages = static_cast<std::size_t>(cfg.n_layer) *
                     static_cast<std::size_t>(cfg.n_head_kv) *
                     static_cast<std::size_t>(cfg.max_position_embeddings / page_size + 1);
  return cache_type<Ladder>(std::move(ladder), profiler_type(threshold),
                            {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
                             .head_dim = cfg.head_dim, .page_size = page_size,
                             .max_pages = pages},
                            cfg.max_position_embeddings,
                            {.n_head_q = cfg.n_head, .n_sinks = sinks});
}
#else
constexpr const char* program = "kvsieve-generate";
using element_type = float; // KV storage element
template <class Ladder>
using cache_type =
    kvsieve::adaptive_cache<Ladder, profiler_type, kvsieve::paged_store<element_type>>;
template <class Cache>
using model_type = llama::model<Cache>;
template <class Ladder>
auto make_cache(Ladder ladder, double threshold, const llama::config& cfg, std::int32_t sinks)
    -> cache_type<Ladder> {
  return cache_type<Ladder>(std::move(ladder), profiler_type(threshold),
                            {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
                             .head_dim = cfg.head_dim, .page_size = page_size},
                            {.n_head_q = cfg.n_head, .n_sinks = sinks});
}
#endif
// --------------------------------------------------------------------------------------------

constexpr const char* usage = R"(usage: kvsieve-generate[-cuda] [options]
  --model DIR            Hugging Face LLaMA directory (config.json, *.safetensors,
                         tokenizer.model or byte-level); default: the bundled tiny model
  --prompt TEXT          prompt text (default: a piece of Python code)
  --prompt-file FILE     read the prompt from FILE
  --max-new-tokens N     tokens to generate (default 200)
  --policy NAME          fastgen | full | local | frequent | local+frequent | streaming
                         (default fastgen)
  --threshold T          FastGen recovery threshold in (0, 1] (default 0.95)
  --local-ratio R        r_l in [0, 1] (default 0.3)
  --frequent-ratio R     r_f in [0, 1] (default 0.3)
  --sinks N              attention sinks kept by every candidate (default 0)
  --window N             StreamingLLM window for --policy streaming (default 256)
  --temperature X        0 = greedy (default 0.6)
  --top-p P              nucleus mass in (0, 1] (default 0.9)
  --seed S               sampling seed (default 42)
  --json                 print one JSON object instead of text and summary
  --help                 this text
)";

constexpr const char* default_prompt = R"(import json
import os


class Inventory:
    """A small inventory of items, saved as JSON."""

    def __init__(self, path):
        self.path = path
        self.items = {}

    def add(self, name, count=1):
        self.items[name] = self.items.get(name, 0) + count

    def remove(self, name, count=1):
        if self.items.get(name, 0) < count:
            raise ValueError("not enough %s" % name)
        self.items[name] -= count

    def save(self):
        with open(self.path, "w") as f:
            json.dump(self.items, f)

    def load(self):
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.items = json.load(f)


def main():
)";

struct options {
  std::string model_dir = KVSIEVE_DEFAULT_MODEL_DIR;
  std::string prompt = default_prompt;
  std::int32_t max_new_tokens = 200;
  std::string policy = "fastgen";
  double threshold = 0.95;
  double local_ratio = 0.3;
  double frequent_ratio = 0.3;
  std::int32_t sinks = 0;
  std::int32_t window = 256;
  float temperature = 0.6F;
  float top_p = 0.9F;
  std::uint64_t seed = 42;
  bool json = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n\n%s", program, message.c_str(), usage);
  std::exit(2);
}

auto parse_number(const std::string& flag, const char* text) -> double {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v)) {
    usage_error(fmt::format("{} expects a number, got '{}'", flag, text));
  }
  return v;
}

auto parse_count(const std::string& flag, const char* text) -> std::int32_t {
  const double v = parse_number(flag, text);
  if (v < 0 || v != std::floor(v) || v > 1e9) {
    usage_error(fmt::format("{} expects a non-negative integer, got '{}'", flag, text));
  }
  return static_cast<std::int32_t>(v);
}

auto parse(int argc, char** argv) -> options {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (i + 1 >= argc) {
      usage_error(a.rfind("--", 0) == 0 ? a + " needs a value" : "unknown argument '" + a + "'");
    }
    const char* v = argv[++i];
    if (a == "--model") {
      o.model_dir = v;
    } else if (a == "--prompt") {
      o.prompt = v;
    } else if (a == "--prompt-file") {
      std::ifstream in(v, std::ios::binary);
      if (!in) {
        usage_error(fmt::format("cannot read prompt file '{}'", v));
      }
      std::stringstream ss;
      ss << in.rdbuf();
      o.prompt = ss.str();
    } else if (a == "--max-new-tokens") {
      o.max_new_tokens = parse_count(a, v);
    } else if (a == "--policy") {
      o.policy = v;
    } else if (a == "--threshold") {
      o.threshold = parse_number(a, v);
    } else if (a == "--local-ratio") {
      o.local_ratio = parse_number(a, v);
    } else if (a == "--frequent-ratio") {
      o.frequent_ratio = parse_number(a, v);
    } else if (a == "--sinks") {
      o.sinks = parse_count(a, v);
    } else if (a == "--window") {
      o.window = parse_count(a, v);
    } else if (a == "--temperature") {
      o.temperature = static_cast<float>(parse_number(a, v));
    } else if (a == "--top-p") {
      o.top_p = static_cast<float>(parse_number(a, v));
    } else if (a == "--seed") {
      o.seed = static_cast<std::uint64_t>(parse_count(a, v));
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  if (o.threshold <= 0.0 || o.threshold > 1.0) {
    usage_error("--threshold must be in (0, 1]");
  }
  for (const double r : {o.local_ratio, o.frequent_ratio}) {
    if (r < 0.0 || r > 1.0) {
      usage_error("--local-ratio and --frequent-ratio must be in [0, 1]");
    }
  }
  if (o.temperature < 0.0F) {
    usage_error("--temperature must be >= 0");
  }
  if (o.top_p <= 0.0F || o.top_p > 1.0F) {
    usage_error("--top-p must be in (0, 1]");
  }
  if (o.prompt.empty()) {
    usage_error("the prompt is empty");
  }
  return o;
}

// One letter per policy for the map; FastGen's rungs S < P < F < L < A.
auto letter(std::string_view name) -> char {
  static const std::map<std::string_view, char> letters{
      {"special", 'S'},
      {"special+punctuation", 'P'},
      {"special+punctuation+frequent", 'F'},
      {"special+punctuation+frequent+local", 'L'},
      {"full", 'A'},
      {"local", 'W'},
      {"frequent", 'H'},
      {"local+frequent", 'B'},
      {"sinks+recent", 'R'}};
  const auto it = letters.find(name);
  return it == letters.end() ? '?' : it->second;
}

auto colour(char c) -> const char* {
  switch (c) {
  case 'S':
    return "\x1b[42;30m";
  case 'P':
    return "\x1b[46;30m";
  case 'F':
    return "\x1b[43;30m";
  case 'L':
    return "\x1b[45;30m";
  case 'A':
    return "\x1b[41;97m";
  default:
    return "\x1b[47;30m";
  }
}

auto megabytes(std::size_t bytes) -> double { return static_cast<double>(bytes) / 1e6; }

template <class Ladder>
auto run(const options& o, Ladder ladder, const llama::config& cfg,
         const llama::model_weights& weights, const llama::tokenizer& tok) -> int {
  using clock = std::chrono::steady_clock;
  const auto run_start = clock::now();
  auto cache = make_cache(std::move(ladder), o.threshold, cfg, o.sinks);
  model_type<decltype(cache)> model(cfg, weights);
  const auto classifier = tok.classifier();
  const auto ids = tok.encode(o.prompt, true);
  if (ids.size() >= static_cast<std::size_t>(cfg.max_position_embeddings)) {
    usage_error(fmt::format("the prompt has {} tokens; the model's context is {}", ids.size(),
                            cfg.max_position_embeddings));
  }
  const auto classes = classifier.classify(ids);

  const auto t0 = clock::now();
  auto logits = model.prefill(cache, 0, ids, classes);
  const auto t1 = clock::now();
  llama::sampler sample(o.temperature, o.top_p, o.seed);
  auto stream = tok.streamer(ids); // the prompt decides the first word's leading space
  std::string text;
  std::int32_t generated = 0;
  std::int32_t decode_steps = 0;
  const bool tty = isatty(STDOUT_FILENO) != 0;
  if (!o.json) {
    std::fputs(o.prompt.c_str(), stdout);
    std::fputs(tty ? "\x1b[1m" : "", stdout);
  }
  while (generated < o.max_new_tokens) {
    const std::int32_t next = sample(logits);
    if (tok.is_eos(next)) {
      break;
    }
    ++generated;
    const std::string piece = stream.decode_next(next);
    text += piece;
    if (!o.json) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
    if (generated == o.max_new_tokens ||
        cache.length(0, 0) + 1 >= cfg.max_position_embeddings) {
      break;
    }
    logits = model.decode(cache, 0, next, classifier(next));
    ++decode_steps;
  }
  const std::string tail = stream.flush(); // a character cut by max-new-tokens
  text += tail;
  if (!o.json) {
    std::fputs(tail.c_str(), stdout);
  }
  const auto t2 = clock::now();
  const auto r = cache.report();
  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_s = std::chrono::duration<double>(t2 - t1).count();
  const double total_s = std::chrono::duration<double>(t2 - run_start).count();
  const double prefill_tps = static_cast<double>(ids.size()) / prefill_s;
  const double decode_tps = decode_steps > 0 ? decode_steps / decode_s : 0.0;

  std::vector<std::vector<std::string>> map(static_cast<std::size_t>(cfg.n_layer));
  for (const auto& h : r.heads) {
    map[static_cast<std::size_t>(h.head.layer)].emplace_back(h.policy);
  }
  if (o.json) {
    nlohmann::json j;
    j["generated_text"] = text;
    j["prompt_tokens"] = ids.size();
    j["generated_tokens"] = generated;
    j["kv_bytes_full"] = r.bytes_full;
    j["kv_bytes_resident"] = r.bytes_resident;
    j["kv_saved_fraction"] = r.saved_fraction();
    j["kv_only_bytes_full"] = r.kv_bytes_full;
    j["kv_only_bytes_kept"] = r.kv_bytes_kept;
    j["mean_kept_fraction"] = r.mean_kept_fraction;
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [name, n] : r.policy_counts) {
      counts[std::string(name)] = n;
    }
    j["policy_counts"] = counts;
    j["policy_map"] = map;
    j["prefill_tokens_per_s"] = prefill_tps;
    j["decode_tokens_per_s"] = decode_tps;
    j["profile_seconds"] = r.profile_seconds;
    j["profile_share"] = r.profile_seconds / total_s;
    j["policy"] = o.policy;
    j["threshold"] = o.threshold;
    j["local_ratio"] = o.local_ratio;
    j["frequent_ratio"] = o.frequent_ratio;
    j["seed"] = o.seed;
    j["temperature"] = o.temperature;
    j["top_p"] = o.top_p;
    std::puts(j.dump(2).c_str());
    return 0;
  }
  std::fputs(tty ? "\x1b[0m\n\n" : "\n\n", stdout);
  std::printf("model      %s: %d layers, %d query / %d KV heads, head_dim %d, %s tokenizer\n",
              o.model_dir.c_str(), cfg.n_layer, cfg.n_head, cfg.n_head_kv, cfg.head_dim,
              std::string(tok.kind()).c_str());
  std::printf("policy     %s, T = %.2f, r_l = %.2f, r_f = %.2f\n", o.policy.c_str(), o.threshold,
              o.local_ratio, o.frequent_ratio);
  std::printf("tokens     %zu prompt, %d generated\n", ids.size(), generated);
  std::printf("KV memory  full %.3f MB, resident %.3f MB: %.1f%% saved "
              "(K+V alone: %.3f of %.3f MB kept; mean over decode steps %.1f%% kept)\n",
              megabytes(r.bytes_full), megabytes(r.bytes_resident), 100.0 * r.saved_fraction(),
              megabytes(r.kv_bytes_kept), megabytes(r.kv_bytes_full),
              100.0 * r.mean_kept_fraction);
  std::printf("policies   ");
  for (const auto& [name, n] : r.policy_counts) {
    if (n > 0) {
      std::printf("%c %s: %d  ", letter(name), std::string(name).c_str(), n);
    }
  }
  std::printf("\npolicy map (rows: layers, columns: KV heads)\n");
  for (std::size_t l = 0; l < map.size(); ++l) {
    std::printf("  %3zu  ", l);
    for (const auto& name : map[l]) {
      const char c = letter(name);
      if (tty) {
        std::printf("%s %c \x1b[0m", colour(c), c);
      } else {
        std::printf("%c ", c);
      }
    }
    std::printf("\n");
  }
  std::printf("speed      prefill %.0f tokens/s, decode %.1f tokens/s\n", prefill_tps, decode_tps);
  std::printf("profiling  %.4f s, %.2f%% of the run\n", r.profile_seconds,
              100.0 * r.profile_seconds / total_s);
  return 0;
}

} // namespace

auto main(int argc, char** argv) -> int {
  const options o = parse(argc, argv);
#if KVSIEVE_HAS_CUDA
  if (kvsieve::cuda::device_count() == 0) {
    std::fprintf(stderr, "%s: no CUDA device visible (kvsieve-generate runs on the CPU)\n",
                 program);
    return 77; // CTest: skipped
  }
#endif
  try {
    const auto cfg = llama::config::load(o.model_dir);
    const auto weights = llama::model_weights::load(o.model_dir, cfg);
    const auto tok = llama::tokenizer::load(o.model_dir, cfg.vocab_size, cfg.bos_token_id,
                                            cfg.eos_token_ids);
    using namespace kvsieve::policies;
    if (o.policy == "fastgen") {
      return run(o, kvsieve::make_fastgen_ladder({.local_ratio = o.local_ratio,
                                                  .frequent_ratio = o.frequent_ratio}),
                 cfg, weights, tok);
    }
    if (o.policy == "full") {
      return run(o, kvsieve::ladder<full>(), cfg, weights, tok);
    }
    if (o.policy == "local") {
      return run(o, kvsieve::ladder<local>(local(o.local_ratio)), cfg, weights, tok);
    }
    if (o.policy == "frequent") {
      return run(o, kvsieve::ladder<frequent>(frequent(o.frequent_ratio)), cfg, weights, tok);
    }
    if (o.policy == "local+frequent") {
      return run(o,
                 kvsieve::ladder<local_frequent>(
                     local_frequent(local(o.local_ratio), frequent(o.frequent_ratio))),
                 cfg, weights, tok);
    }
    if (o.policy == "streaming") {
      return run(o, kvsieve::ladder<streaming>(streaming(sinks(4), recent(o.window))), cfg,
                 weights, tok);
    }
    usage_error("unknown --policy '" + o.policy + "'");
  } catch (const kvsieve::error& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}
