// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The body of kvsieve-generate and kvsieve-generate-cuda: the reference LLaMA decoder generating
/// through a kvsieve cache. It streams the text, then reports the KV memory FastGen (or another
/// policy) saved, the per-layer x per-KV-head policy map, speeds and the profiling cost.
/// `--help` lists the options. generate_main<Program>(argc, argv) is the whole program; Program is
/// the backend table of its main (generate.cpp for the CPU, generate_cuda.cu for the GPU), the
/// only place the two programs differ:
///   name                                the program's name in messages
///   make_cache(ladder, profiler, cfg, sinks, pool) -> the cache (its memory space picks the
///                                       model's backend: llama::model<Cache>)
///   make_model<Cache>(cfg, weights, pool) -> llama::model<Cache>
///   host_threads                        --threads sizes the host pool (else a note, and 1)
///   layer_wide_profilers                --policy pyramidkv/adakv-style profilers are admitted
///   profile_files                       --profile / --save-profile are admitted
///   device_gate() -> int                before loading: an exit status to stop with, or -1

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <kvsieve/cache/named_policy.hpp>
#include <kvsieve/kvsieve.hpp>
#include <kvsieve/profile/profile_file.hpp>

#include <llama/cli.hpp>
#include <llama/config.hpp>
#include <llama/model.hpp>
#include <llama/sampler.hpp>
#include <llama/tokenizer.hpp>
#include <llama/utf8.hpp>
#include <llama/weights.hpp>

namespace llama::generate {

using profiler_type = kvsieve::recovery_profiler; // FastGen Eq. 1
/// Tokens per page of the KV store, both programs.
inline constexpr std::int32_t page_size = 16;

/// One set of threads for the whole step on the CPU: the model's products and the cache's
/// attention (prefill splits query heads, decode KV heads) take turns on it instead of two pools
/// competing for cores. A backend without host threads gets a pool of one (the caller).
template <class Program>
auto make_pool(std::int32_t threads) -> std::unique_ptr<kvsieve::thread_pool> {
  if constexpr (Program::host_threads) {
    return std::make_unique<kvsieve::thread_pool>(
        threads > 0 ? static_cast<std::size_t>(threads) : llama::default_threads());
  } else {
    return std::make_unique<kvsieve::thread_pool>(1);
  }
}

using llama::cli::options;

inline constexpr const char* usage = R"(usage: kvsieve-generate[-cuda] [options]
  --model DIR            Hugging Face LLaMA directory (config.json, *.safetensors,
                         tokenizer.model or byte-level); default: the bundled tiny model
  --prompt TEXT          prompt text (default: a piece of Python code)
  --prompt-file FILE     read the prompt from FILE (a file, or a pipe such as /dev/stdin)
  --max-new-tokens N     tokens to generate, 0 = run the prompt only (default 200)
  --policy NAME          fastgen | full | local | frequent | local+frequent | streaming |
                         h2o | tova | snapkv | pyramidkv | adakv (docs/policies.md)
                         (default fastgen)
  --threshold T          FastGen recovery threshold in (0, 1] (default 0.95)
  --local-ratio R        r_l in [0, 1] (default 0.3)
  --frequent-ratio R     r_f in [0, 1] (default 0.3)
  --sinks N              attention sinks kept by every candidate (default 0)
  --window N             StreamingLLM window for --policy streaming (default 256)
  --save-profile FILE    write each KV head's choice on the prompt as a head-profile file (JSON)
  --profile FILE         replay such a file's choices instead of profiling (--policy fastgen)
  --budget N             tokens per KV head for h2o (half heavy hitters, half recent), tova,
                         snapkv (32-row observation window kept besides), and the mean per
                         layer for pyramidkv and adakv (default 256)
  --temperature X        0 = greedy (default 0.6)
  --top-p P              nucleus mass in (0, 1] (default 0.9)
  --seed S               sampling seed in [0, 2^64) (default 42)
  --threads N            CPU threads for the matrix products and the attention, in
                         [1, 256] (default: $KVSIEVE_THREADS if set, else the hardware
                         threads)
  --json                 print one JSON object instead of text and summary
  --help                 this text
A value may also follow '=' (--seed=7). Text is printed as UTF-8: bytes that are not valid
UTF-8 become U+FFFD, on the terminal and in --json alike.
)";

inline constexpr const char* default_prompt = R"(import json
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

[[noreturn]] inline void usage_error(const char* program, const std::string& message) {
  std::fprintf(stderr, "%s: %s\n(%s --help lists the options)\n", program, message.c_str(),
               program);
  std::exit(2);
}

// A failed write to stdout (a closed pipe, a full disk): the run stops with this message.
class output_error : public std::runtime_error {
public:
  explicit output_error(int err) // 0 (a stream error set earlier): say EIO
      : std::runtime_error(
            fmt::format("cannot write the output: {}", std::strerror(err != 0 ? err : EIO))) {}
};

inline void write_out(std::string_view text) {
  errno = 0;
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) {
    throw output_error(errno);
  }
}

inline void flush_out() {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    throw output_error(errno);
  }
}

// One letter per policy for the map; FastGen's rungs S < P < F < L < A.
inline auto letter(std::string_view name) -> char {
  static const std::map<std::string_view, char> letters{
      {"special", 'S'},
      {"special+punctuation", 'P'},
      {"special+punctuation+frequent", 'F'},
      {"special+punctuation+frequent+local", 'L'},
      {"full", 'A'},
      {"local", 'W'},
      {"frequent", 'H'},
      {"local+frequent", 'B'},
      {"sinks+recent", 'R'},
      {"h2o", 'O'},
      {"tova", 'T'},
      {"snapkv", 'K'}};
  const auto it = letters.find(name);
  return it == letters.end() ? '?' : it->second;
}

inline auto colour(char c) -> const char* {
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

inline auto megabytes(std::size_t bytes) -> double { return static_cast<double>(bytes) / 1e6; }

// A float as a double with its shortest decimal form (0.9F -> 0.9, not 0.8999999761581421).
inline auto as_written(float x) -> double { return std::stod(fmt::format("{}", x)); }

// Why generation stopped, as --json's "stop_reason" writes it.
inline constexpr const char* stopped_eos = "eos";
inline constexpr const char* stopped_max_new_tokens = "max_new_tokens";
inline constexpr const char* stopped_context_limit = "context_limit";

// The model's logits feed the sampler only when every one is finite; otherwise the run stops
// naming the position whose logits they are and how they arose.
inline void check_logits(std::span<const float> logits, std::int32_t position, std::int32_t step,
                  std::size_t prompt_tokens) {
  const auto bad = llama::find_non_finite(logits);
  if (!bad.any()) {
    return;
  }
  throw std::runtime_error(fmt::format(
      "the logits at position {} ({}) are not finite: {} NaN, {} +inf, {} -inf of {}, the first "
      "at token id {}; the model's activations overflowed",
      position,
      step == 0 ? fmt::format("the last of the {}-token prompt", prompt_tokens)
                : fmt::format("generation step {}", step),
      bad.nan, bad.pos_inf, bad.neg_inf, logits.size(), bad.first));
}

/// The T the run's profiler used, NaN when it has none (a replayed file, a fixed policy).
inline auto profiler_threshold(const options& o) -> double {
  return o.policy == "fastgen" && o.profile.empty() ? o.threshold
                                                    : std::numeric_limits<double>::quiet_NaN();
}

template <class Program, class Ladder, class Profiler = profiler_type>
auto run(const options& o, Ladder ladder, const llama::config& cfg,
         const llama::model_weights& weights, const llama::tokenizer& tok,
         Profiler profiler = profiler_type(1.0)) -> int {
  using clock = std::chrono::steady_clock;
  const auto run_start = clock::now();
  constexpr const char* program = Program::name;
  const auto pool = make_pool<Program>(o.threads); // outlives the cache and the model
  auto cache = Program::make_cache(std::move(ladder), std::move(profiler), cfg, o.sinks, *pool);
  auto model = Program::template make_model<decltype(cache)>(cfg, weights, *pool);
  const auto classifier = tok.classifier();
  const auto ids = tok.encode(o.prompt, true);
  const auto context = static_cast<std::size_t>(cfg.max_position_embeddings);
  if (ids.size() > context || (ids.size() == context && o.max_new_tokens > 0)) {
    throw std::runtime_error(fmt::format(
        "the prompt has {} tokens and the model's context (max_position_embeddings) is {}: {}",
        ids.size(), context,
        ids.size() == context ? "no room is left to generate" : "shorten the prompt"));
  }
  const auto n_prompt = static_cast<std::int32_t>(ids.size());
  const auto classes = classifier.classify(ids);

  const auto t0 = clock::now();
  auto logits = model.prefill(cache, 0, ids, classes);
  check_logits(logits, n_prompt - 1, 0, ids.size());
  if constexpr (Program::profile_files) {
    if (!o.save_profile.empty()) { // the prompt's choices, before decode changes the lengths
      kvsieve::save_profile(kvsieve::profile_of(cache, profiler_threshold(o)), o.save_profile);
    }
  }
  const auto t1 = clock::now();
  llama::sampler sample(o.temperature, o.top_p, o.seed);
  auto stream = tok.streamer(ids); // the prompt decides the first word's leading space
  std::string text;                // what was generated, as valid UTF-8
  std::int32_t generated = 0;
  std::int32_t decode_steps = 0;
  const char* stop_reason = stopped_max_new_tokens;
  const bool tty = isatty(STDOUT_FILENO) != 0;
  const auto show = [&](std::string_view piece) { // text to stdout, control characters hidden
    write_out(tty ? llama::for_terminal(piece) : std::string(piece));
  };
  if (!o.json) {
    const std::string prompt = llama::to_valid_utf8(o.prompt);
    show(prompt);
    if (tty) {
      write_out("\x1b[1m"); // bold: the generated text
    } else {
      // In a file or a pipe a marker line shows where the generated text starts.
      write_out(fmt::format("{}---- end of the prompt ({} tokens); generated text follows ----\n",
                            prompt.ends_with('\n') ? "" : "\n", ids.size()));
    }
    flush_out();
  }
  while (generated < o.max_new_tokens) {
    const std::int32_t next = sample(logits);
    if (tok.is_eos(next)) {
      stop_reason = stopped_eos;
      break;
    }
    ++generated;
    const std::string piece = llama::to_valid_utf8(stream.decode_next(next));
    text += piece;
    if (!o.json) {
      show(piece);
      flush_out();
    }
    if (generated == o.max_new_tokens) {
      break;
    }
    const std::int32_t position = cache.length(0, 0); // where `next` goes
    if (position + 1 >= cfg.max_position_embeddings) {
      stop_reason = stopped_context_limit; // `next` took the last position
      break;
    }
    logits = model.decode(cache, 0, next, classifier(next));
    ++decode_steps;
    check_logits(logits, position, decode_steps, ids.size());
  }
  const std::string tail = llama::to_valid_utf8(stream.flush()); // a character cut at the end
  text += tail;
  if (!o.json) {
    show(tail);
    write_out(tty ? "\x1b[0m\n\n"
                  : fmt::format("{}---- end of the generated text ({} tokens) ----\n\n",
                                text.ends_with('\n') || text.empty() ? "" : "\n", generated));
  }
  if (stop_reason == stopped_context_limit) {
    flush_out(); // the text first, then the note
    std::fprintf(stderr,
                 "%s: stopped at the context limit: %d prompt + %d generated tokens fill the "
                 "model's %d positions (max_position_embeddings); %d of --max-new-tokens %d were "
                 "not generated\n",
                 program, n_prompt, generated, cfg.max_position_embeddings,
                 o.max_new_tokens - generated, o.max_new_tokens);
  }
  const auto t2 = clock::now();
  const auto r = cache.report();
  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_s = std::chrono::duration<double>(t2 - t1).count();
  const double total_s = std::chrono::duration<double>(t2 - run_start).count();
  const double prefill_tps = static_cast<double>(ids.size()) / prefill_s;
  const double decode_tps = decode_steps > 0 ? decode_steps / decode_s : 0.0;

  // Memory is allocated in pages of page_size tokens per KV head: a page returns to the pool only
  // once eviction has emptied it, so kept tokens and resident bytes tell different stories.
  std::vector<std::vector<std::string>> map(static_cast<std::size_t>(cfg.n_layer));
  std::size_t tokens_seen = 0;
  std::size_t tokens_kept = 0;
  std::size_t pages_full = 0;
  for (const auto& h : r.heads) {
    map[static_cast<std::size_t>(h.head.layer)].emplace_back(h.policy);
    tokens_seen += static_cast<std::size_t>(h.length);
    tokens_kept += static_cast<std::size_t>(h.kept);
    pages_full += (static_cast<std::size_t>(h.length) + page_size - 1) / page_size;
  }
  const std::size_t page_bytes = pages_full == 0 ? 0 : r.bytes_full / pages_full;
  const std::size_t pages_resident = page_bytes == 0 ? 0 : r.bytes_resident / page_bytes;
  const double kept_fraction =
      tokens_seen == 0 ? 1.0
                       : static_cast<double>(tokens_kept) / static_cast<double>(tokens_seen);
  if (o.json) {
    nlohmann::json j;
    j["generated_text"] = text;
    j["prompt_tokens"] = ids.size();
    j["generated_tokens"] = generated;
    j["stop_reason"] = stop_reason;
    j["context_length"] = cfg.max_position_embeddings;
    j["kv_bytes_full"] = r.bytes_full;
    j["kv_bytes_resident"] = r.bytes_resident;
    j["kv_saved_fraction"] = r.saved_fraction();
    j["kv_page_size"] = page_size;
    j["kv_pages_full"] = pages_full;
    j["kv_pages_resident"] = pages_resident;
    j["kv_only_bytes_full"] = r.kv_bytes_full;
    j["kv_only_bytes_kept"] = r.kv_bytes_kept;
    j["kept_token_fraction"] = kept_fraction;
    j["decode_steps"] = decode_steps;
    // A mean over no decode step is no number.
    j["mean_kept_fraction"] =
        decode_steps > 0 ? nlohmann::json(r.mean_kept_fraction) : nlohmann::json(nullptr);
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
    j["temperature"] = as_written(o.temperature);
    j["top_p"] = as_written(o.top_p);
    j["threads"] = model.threads();
    // Every string is valid UTF-8 already; `replace` keeps a future one from aborting the dump.
    write_out(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    write_out("\n");
    flush_out();
    return 0;
  }
  std::printf("model      %s: %d layers, %d query / %d KV heads, head_dim %d, %s tokenizer\n",
              o.model_dir.c_str(), cfg.n_layer, cfg.n_head, cfg.n_head_kv, cfg.head_dim,
              std::string(tok.kind()).c_str());
  std::printf("policy     %s, T = %.2f, r_l = %.2f, r_f = %.2f\n", o.policy.c_str(), o.threshold,
              o.local_ratio, o.frequent_ratio);
  std::printf("tokens     %zu prompt, %d generated (stopped: %s)\n", ids.size(), generated,
              stop_reason == stopped_eos              ? "end of text"
              : stop_reason == stopped_context_limit ? "context limit"
                                                      : "--max-new-tokens");
  std::printf("KV memory  full %.3f MB, resident %.3f MB: %.1f%% saved (%zu of %zu pages of %d "
              "tokens resident)\n",
              megabytes(r.bytes_full), megabytes(r.bytes_resident), 100.0 * r.saved_fraction(),
              pages_resident, pages_full, page_size);
  std::printf("K+V alone  %.3f of %.3f MB kept: %.1f%% of the tokens", megabytes(r.kv_bytes_kept),
              megabytes(r.kv_bytes_full), 100.0 * kept_fraction);
  if (decode_steps > 0) {
    std::printf("; mean over %d decode steps %.1f%% kept", decode_steps,
                100.0 * r.mean_kept_fraction);
  }
  std::printf("\n");
  if ((1.0 - kept_fraction) - r.saved_fraction() > 0.05) {
    std::printf("           (memory is freed in whole pages: a page of %d tokens returns to the pool "
                "only once\n            all its tokens are evicted, so %.1f%% of the tokens "
                "evicted free %.1f%% of the bytes)\n",
                page_size, 100.0 * (1.0 - kept_fraction), 100.0 * r.saved_fraction());
  }
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
  const std::size_t threads = model.threads();
  std::printf("speed      prefill %.0f tokens/s, decode %.1f tokens/s (%zu thread%s)\n",
              prefill_tps, decode_tps, threads, threads == 1 ? "" : "s");
  std::printf("profiling  %.4f s, %.2f%% of the run\n", r.profile_seconds,
              100.0 * r.profile_seconds / total_s);
  flush_out();
  return 0;
}

/// The whole program: parse argv, check the device (Program::device_gate), load the model, run.
/// Returns the exit status: 0, 1 (an error after parsing), 2 (usage), or the gate's.
template <class Program>
auto generate_main(int argc, char** argv) -> int {
  constexpr const char* program = Program::name;
  // A closed pipe (`| head`) becomes a write error with a message, not death by SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  options defaults;
  defaults.model_dir = KVSIEVE_DEFAULT_MODEL_DIR;
  defaults.prompt = default_prompt;
  options o;
  try {
    o = llama::cli::parse(std::span<const char* const>(argv + 1, static_cast<std::size_t>(argc - 1)),
                          std::move(defaults));
  } catch (const llama::cli::usage_error& e) {
    usage_error(program, e.what());
  }
  if (o.help) {
    std::fputs(usage, stdout);
    return 0;
  }
  if (!Program::host_threads && o.threads > 0) {
    o.notes.emplace_back("--threads is ignored: the model runs on the GPU");
  }
  for (const auto& note : o.notes) {
    std::fprintf(stderr, "%s: note: %s\n", program, note.c_str());
  }
  // A backend without a usable device stops here with its exit status (negative: go on).
  if (const int code = Program::device_gate(); code >= 0) {
    return code;
  }
  try {
    const auto cfg = llama::config::load(o.model_dir);
    const auto weights = llama::model_weights::load(o.model_dir, cfg);
    const auto tok = llama::tokenizer::load(o.model_dir, cfg.vocab_size, cfg.bos_token_id,
                                            cfg.eos_token_ids);
    const kvsieve::policy_settings settings{.name = o.policy,
                                            .threshold = o.threshold,
                                            .local_ratio = o.local_ratio,
                                            .frequent_ratio = o.frequent_ratio,
                                            .window = o.window,
                                            .budget = o.budget};
    if constexpr (!Program::profile_files) {
      if (!o.profile.empty() || !o.save_profile.empty()) {
        throw std::runtime_error("--profile and --save-profile run in kvsieve-generate (the CPU "
                                 "build); the CUDA program does not read or write profile files");
      }
    } else if (!o.profile.empty()) { // FastGen's ladder, each head's choice from the file
      auto ladder = kvsieve::named_fastgen_ladder(settings);
      const auto file = kvsieve::load_profile(std::filesystem::path(o.profile));
      kvsieve::check_compatible(file, ladder,
                                {.n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
                                 .head_dim = cfg.head_dim});
      if (o.policy != "fastgen") {
        throw std::runtime_error("--profile replays FastGen's ladder: use --policy fastgen");
      }
      return run<Program>(o, std::move(ladder), cfg, weights, tok,
                          kvsieve::replay_profiler(file));
    }
    // parse() admits only the names with_named_policy knows.
    return kvsieve::with_named_policy(settings, [&](auto ladder, auto profiler) -> int {
      if constexpr (!Program::layer_wide_profilers && kvsieve::layer_profiler<decltype(profiler)>) {
        throw std::runtime_error(fmt::format("--policy {} (a layer-wide profiler) runs in "
                                             "kvsieve-generate (the CPU build) until the CUDA "
                                             "cache supports it",
                                             o.policy));
      } else {
        return run<Program>(o, std::move(ladder), cfg, weights, tok, std::move(profiler));
      }
    });
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory\n", program);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
  } catch (...) { // a library's own exception type: still a message, never std::terminate
    std::fprintf(stderr, "%s: unknown error\n", program);
  }
  return 1;
}

} // namespace llama::generate
