// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve-eval: FastGen against the full cache and fixed policies on held-out data, through the
// reference decoder. Writes results.csv, retrieval.csv, heads.csv, profile.csv and
// stability.csv (columns in docs/results.md). `--help` lists the options; `--quick` is the CTest
// smoke run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/kvsieve.hpp>

#include <llama/config.hpp>
#include <llama/model.hpp>
#include <llama/tokenizer.hpp>
#include <llama/weights.hpp>

#include "configs.hpp"
#include "data.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "stability.hpp"

namespace {

constexpr const char* usage = R"(usage: kvsieve-eval [options]
  --model DIR              LLaMA directory (default: the bundled tiny model)
  --data-root DIR          Python tree whose held-out split is used (default /usr/lib/python3.11)
  --data-file FILE         evaluate on the documents of this JSON-lines file instead ({"source",
                           "name", "text"} per line: the second model's held-out split,
                           tools/model2/build_corpus.py); results' data column is its file name
  --out DIR                output folder for the CSV files (default eval-results)
  --write-snippets FILE    write the teacher-forced snippets of the current --data, --data-file,
                           --snippets, --prompt-tokens and --continuation-tokens to FILE (JSON
                           lines: {"name": source file, "prompt": token ids, BOS included,
                           "continuation": token ids}) and exit without evaluating
  --quick                  a tiny slice: 2 snippets, 2 T values, 1 fixed policy, a 1-prompt
                           stability check (CTest)
  --groups LIST            comma-separated subset of main,fixed,peers,ablation,stability (default
                           all; the full cache runs whenever a configuration group does: it is
                           the reference)
  --match TEXT             run only the configurations whose name contains TEXT (repeatable;
                           the full cache always runs)
  --data held-out|tune     code the snippets and retrieval filler come from (default held-out;
                           tune = training files index % 50 == 25, for choosing defaults)
  --snippets N             teacher-forced snippets of the --data split (default 4)
  --prompt-tokens N        prompt tokens per snippet, BOS included (default 160)
  --continuation-tokens N  scored tokens per snippet (default 352)
  --gen-prompts N          greedy prompts, the first snippets' prompts (default 4)
  --gen-tokens N           greedy tokens per prompt (default 128)
  --retrieval-lengths LIST context bytes of the retrieval prompts (default 256,512,768)
  --retrieval-prompts N    prompts per length (default 1)
  --questions N            questions per retrieval prompt (default 8)
  --profile-lengths LIST   generated tokens of the profiling-cost runs (default 128,256,512,990)
  --fixed-ratios LIST      fixed-policy sweep: local r_l, frequent r_f, local+frequent
                           r_l = r_f = r/2 (default 0.1,0.2,0.3,0.5,0.7,0.9)
  --windows LIST           sinks+recent sweep: recent tokens, 4 sinks (default 28,60,124,252,380)
  --budgets LIST           peers sweep (H2O, TOVA, SnapKV, PyramidKV, Ada-KV): tokens per head
                           (default 8,24,48,80,120,160,240)
  --stability-prompts N    prompts of the stability check (default 16; --prompt-tokens each)
  --stability-steps LIST   generated tokens after which it re-measures (default 10,20,30;
                           0, the prompt itself, is always measured)
  --stability-threshold T  T of the stability check's choices (default 0.98)
  --seed S                 retrieval generator seed (default 20261123; training used 1234+)
  --help                   this text
)";

struct options {
  std::string model_dir = KVSIEVE_DEFAULT_MODEL_DIR;
  eval::text_source data;
  std::string out = "eval-results";
  std::string write_snippets; ///< --write-snippets FILE: write the snippets and exit
  bool quick = false;
  std::set<std::string> groups{"main", "fixed", "peers", "ablation", "stability"};
  std::vector<std::string> match;
  std::int32_t snippets = 4;
  std::int32_t prompt_tokens = 160;
  std::int32_t continuation_tokens = 352;
  std::int32_t gen_prompts = 4;
  std::int32_t gen_tokens = 128;
  std::vector<std::int32_t> retrieval_lengths{256, 512, 768};
  std::int32_t retrieval_prompts = 1;
  std::int32_t questions = 8;
  std::vector<std::int32_t> profile_lengths{128, 256, 512, 990};
  std::vector<double> fixed_ratios;
  std::vector<std::int32_t> windows;
  std::vector<std::int32_t> budgets;
  std::int32_t stability_prompts = 16;
  std::vector<std::int32_t> stability_steps{10, 20, 30};
  double stability_threshold = 0.98;
  std::uint64_t seed = 20261123;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "kvsieve-eval: %s\n\n%s", message.c_str(), usage);
  std::exit(2);
}

auto parse_count(const std::string& flag, const std::string& text) -> std::int32_t {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 0 || v > 1000000) {
    usage_error(fmt::format("{} expects a non-negative integer, got '{}'", flag, text));
  }
  return static_cast<std::int32_t>(v);
}

auto split(const std::string& text) -> std::vector<std::string> {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    out.push_back(item);
  }
  return out;
}

auto parse(int argc, char** argv) -> options {
  options o;
  bool sized = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (a == "--quick") {
      o.quick = true;
      continue;
    }
    if (i + 1 >= argc) {
      usage_error(a.rfind("--", 0) == 0 ? a + " needs a value" : "unknown argument '" + a + "'");
    }
    const std::string v = argv[++i];
    auto counts = [&] {
      std::vector<std::int32_t> out;
      for (const auto& s : split(v)) {
        out.push_back(parse_count(a, s));
      }
      return out;
    };
    if (a == "--model") {
      o.model_dir = v;
    } else if (a == "--data-root") {
      o.data.root = v;
    } else if (a == "--data-file") {
      o.data.jsonl = v;
    } else if (a == "--out") {
      o.out = v;
    } else if (a == "--write-snippets") {
      o.write_snippets = v;
    } else if (a == "--groups") {
      o.groups.clear();
      for (const auto& g : split(v)) {
        if (g != "main" && g != "fixed" && g != "peers" && g != "ablation" &&
            g != "stability") {
          usage_error("unknown group '" + g + "'");
        }
        o.groups.insert(g);
      }
    } else if (a == "--match") {
      o.match.push_back(v);
    } else if (a == "--data") {
      if (v != "held-out" && v != "tune") {
        usage_error("--data expects held-out or tune, got '" + v + "'");
      }
      o.data.split = v == "tune" ? eval::data_split::tune : eval::data_split::held_out;
    } else if (a == "--stability-threshold") {
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(x > 0.0 && x <= 1.0)) {
        usage_error("--stability-threshold expects a number in (0, 1], got '" + v + "'");
      }
      o.stability_threshold = x;
    } else if (a == "--fixed-ratios") {
      for (const auto& r : split(v)) {
        char* end = nullptr;
        const double x = std::strtod(r.c_str(), &end);
        if (r.empty() || *end != '\0' || !(x > 0.0 && x <= 1.0)) {
          usage_error("--fixed-ratios expects numbers in (0, 1], got '" + r + "'");
        }
        o.fixed_ratios.push_back(x);
      }
    } else if (a == "--windows") {
      o.windows = counts();
    } else if (a == "--budgets") {
      o.budgets = counts();
    } else if (a == "--seed") {
      o.seed = static_cast<std::uint64_t>(parse_count(a, v));
    } else {
      sized = true;
      if (a == "--snippets") {
        o.snippets = parse_count(a, v);
      } else if (a == "--prompt-tokens") {
        o.prompt_tokens = parse_count(a, v);
      } else if (a == "--continuation-tokens") {
        o.continuation_tokens = parse_count(a, v);
      } else if (a == "--gen-prompts") {
        o.gen_prompts = parse_count(a, v);
      } else if (a == "--gen-tokens") {
        o.gen_tokens = parse_count(a, v);
      } else if (a == "--retrieval-lengths") {
        o.retrieval_lengths = counts();
      } else if (a == "--retrieval-prompts") {
        o.retrieval_prompts = parse_count(a, v);
      } else if (a == "--questions") {
        o.questions = parse_count(a, v);
      } else if (a == "--profile-lengths") {
        o.profile_lengths = counts();
      } else if (a == "--stability-prompts") {
        o.stability_prompts = parse_count(a, v);
      } else if (a == "--stability-steps") {
        o.stability_steps = counts();
      } else {
        usage_error("unknown option '" + a + "'");
      }
    }
  }
  if (o.quick && !sized) {
    o.snippets = 2;
    o.prompt_tokens = 128;
    o.continuation_tokens = 128;
    o.gen_prompts = 1;
    o.gen_tokens = 32;
    o.retrieval_lengths = {256};
    o.questions = 2;
    o.profile_lengths = {64};
    o.stability_prompts = 1;
    o.stability_steps = {10};
  }
  if (o.prompt_tokens < 2 || o.continuation_tokens < 1) {
    usage_error("--prompt-tokens must be >= 2 and --continuation-tokens >= 1");
  }
  if (o.gen_prompts > o.snippets && o.write_snippets.empty()) {
    usage_error("--gen-prompts cannot exceed --snippets");
  }
  return o;
}

/// `count` (document name, token ids) pieces of the --data source, each at least `tokens` tokens
/// (BOS included). Bytes per token depend on the tokenizer: 1 for the byte-level model, ~4 for
/// SentencePiece prose and more over runs of spaces. Pieces start at 4 bytes per token (what the
/// bundled model's published results used; always enough for it) and double until every piece
/// is long enough.
auto token_pieces(const options& o, const llama::tokenizer& tok, std::size_t count,
                  std::size_t tokens, std::string_view flag)
    -> std::vector<std::pair<std::string, std::vector<std::int32_t>>> {
  for (std::size_t per_token = 4; per_token <= 64; per_token *= 2) {
    const auto pieces = eval::named_code_pieces(o.data, count, tokens * per_token, 2);
    if (pieces.size() < count) {
      kvsieve::expects(per_token > 4, kvsieve::errc::io, [&] {
        return fmt::format("not enough documents in the data for {} {}", flag, count);
      });
      break; // too few documents this long: longer pieces will not help
    }
    std::vector<std::pair<std::string, std::vector<std::int32_t>>> out;
    for (const auto& [name, text] : pieces) {
      auto ids = tok.encode(text, true);
      if (ids.size() < tokens) {
        break;
      }
      out.emplace_back(name, std::move(ids));
    }
    if (out.size() == count) {
      return out;
    }
  }
  kvsieve::raise(kvsieve::errc::io,
                 fmt::format("{} {}: the data has too few documents of {} tokens for this "
                             "tokenizer",
                             flag, count, tokens));
}

/// The teacher-forced snippets: --snippets pieces of the --data source, each split into a prompt
/// (BOS included) and a scored continuation.
auto teacher_snippets(const options& o, const llama::config& cfg, const llama::tokenizer& tok)
    -> std::vector<eval::workload::teacher_item> {
  const auto total = static_cast<std::size_t>(o.prompt_tokens + o.continuation_tokens);
  kvsieve::expects(total <= static_cast<std::size_t>(cfg.max_position_embeddings),
                   kvsieve::errc::invalid_argument, "prompt + continuation exceed the context");
  std::vector<eval::workload::teacher_item> out;
  for (const auto& [name, ids] :
       token_pieces(o, tok, static_cast<std::size_t>(o.snippets), total, "--snippets")) {
    eval::workload::teacher_item item;
    item.name = name;
    const auto p = static_cast<std::ptrdiff_t>(o.prompt_tokens);
    item.prompt.assign(ids.begin(), ids.begin() + p);
    item.continuation.assign(ids.begin() + p, ids.begin() + static_cast<std::ptrdiff_t>(total));
    item.continuation_bytes = tok.decode(item.continuation).size();
    out.push_back(std::move(item));
  }
  return out;
}

/// --write-snippets: one JSON object per snippet ({"name", "prompt", "continuation"}).
void write_snippets(const std::string& file,
                    const std::vector<eval::workload::teacher_item>& snippets) {
  std::ofstream f(file);
  kvsieve::expects(f.good(), kvsieve::errc::io,
                   [&] { return "--write-snippets: cannot open " + file + " for writing"; });
  for (const auto& s : snippets) {
    f << nlohmann::json{{"name", s.name}, {"prompt", s.prompt}, {"continuation", s.continuation}}
             .dump()
      << '\n';
  }
  f.close();
  kvsieve::expects(!f.fail(), kvsieve::errc::io,
                   [&] { return "--write-snippets: writing " + file + " failed"; });
}

auto build_workload(const options& o, const llama::config& cfg, const llama::tokenizer& tok)
    -> eval::workload {
  eval::workload w;
  w.teacher = teacher_snippets(o, cfg, tok);
  for (std::int32_t i = 0; i < o.gen_prompts; ++i) {
    w.gen_prompts.push_back(w.teacher[static_cast<std::size_t>(i)].prompt);
  }
  w.gen_tokens = o.gen_tokens;
  for (const auto len : o.retrieval_lengths) {
    const auto prompts = eval::retrieval_prompts(
        o.data, static_cast<std::size_t>(o.retrieval_prompts), static_cast<std::size_t>(len),
        static_cast<std::size_t>(o.questions), o.seed + static_cast<std::uint64_t>(len));
    for (const auto& p : prompts) {
      eval::workload::retrieval_item item;
      item.context_bytes = static_cast<std::size_t>(len);
      item.context = tok.encode(p.context, true);
      for (const auto& q : p.questions) {
        eval::workload::question wq;
        wq.ask = tok.encode(q.ask, false);
        const auto with = tok.encode(q.ask + q.value, false);
        const bool prefix =
            with.size() > wq.ask.size() && std::equal(wq.ask.begin(), wq.ask.end(), with.begin());
        wq.answer = prefix ? std::vector<std::int32_t>(with.begin() + static_cast<std::ptrdiff_t>(
                                                                         wq.ask.size()),
                                                       with.end())
                           : tok.encode(q.value, false);
        wq.tail = tok.encode("'\n", false);
        item.questions.push_back(std::move(wq));
      }
      std::size_t length = item.context.size();
      for (const auto& q : item.questions) {
        length += q.ask.size() + q.answer.size() + q.tail.size();
      }
      kvsieve::expects(length <= static_cast<std::size_t>(cfg.max_position_embeddings),
                       kvsieve::errc::invalid_argument, [&] {
                         return fmt::format("--retrieval-lengths {}: a prompt with its {} "
                                            "questions is {} tokens, over the model's context "
                                            "of {}; use shorter contexts or fewer --questions",
                                            len, item.questions.size(), length,
                                            cfg.max_position_embeddings);
                       });
      w.retrieval.push_back(std::move(item));
    }
  }
  w.profile_prompt = w.teacher.front().prompt;
  w.profile_prompt.resize(std::min<std::size_t>(w.profile_prompt.size(), 32));
  for (const auto len : o.profile_lengths) {
    w.profile_lengths.push_back(std::min(
        len, cfg.max_position_embeddings - static_cast<std::int32_t>(w.profile_prompt.size())));
  }
  return w;
}

/// The stability check's prompts: BOS + prompt_tokens - 1 tokens of code pieces.
auto stability_prompts(const options& o, const llama::tokenizer& tok)
    -> std::vector<std::vector<std::int32_t>> {
  const auto len = static_cast<std::size_t>(o.prompt_tokens);
  std::vector<std::vector<std::int32_t>> out;
  for (auto& [name, ids] : token_pieces(o, tok, static_cast<std::size_t>(o.stability_prompts),
                                        len, "--stability-prompts")) {
    ids.resize(len);
    out.push_back(std::move(ids));
  }
  return out;
}

auto selected(const options& o, const eval::config_spec& spec) -> bool {
  if (spec.kind == eval::ladder_kind::full) {
    return true;
  }
  if (o.groups.count(spec.group) == 0) {
    return false;
  }
  if (o.match.empty()) {
    return true;
  }
  const std::string name = spec.name();
  return std::any_of(o.match.begin(), o.match.end(),
                     [&](const std::string& m) { return name.find(m) != std::string::npos; });
}

} // namespace

auto main(int argc, char** argv) -> int {
  const options o = parse(argc, argv);
  try {
    const auto start = std::chrono::steady_clock::now();
    const auto cfg = llama::config::load(o.model_dir);
    const auto weights = llama::model_weights::load(o.model_dir, cfg);
    const auto tok = llama::tokenizer::load(o.model_dir, cfg.vocab_size, cfg.bos_token_id,
                                            cfg.eos_token_ids);
    const auto classifier = tok.classifier();
    if (!o.write_snippets.empty()) {
      write_snippets(o.write_snippets, teacher_snippets(o, cfg, tok));
      std::fprintf(stderr, "kvsieve-eval: wrote %d snippets to %s\n", o.snippets,
                   o.write_snippets.c_str());
      return 0;
    }
    const eval::environment env{cfg, weights, tok, classifier};
    auto w = build_workload(o, cfg, tok);
    const auto profile_lengths = w.profile_lengths;
    std::filesystem::create_directories(o.out);
    const bool configs = o.groups.count("main") + o.groups.count("fixed") +
                             o.groups.count("peers") + o.groups.count("ablation") > 0;
    if (o.groups.count("stability") > 0) {
      const auto t0 = std::chrono::steady_clock::now();
      auto steps = o.stability_steps;
      steps.insert(steps.begin(), 0);
      eval::write_stability(o.out, eval::stability(kvsieve::make_fastgen_ladder({}),
                                                   o.stability_threshold, env,
                                                   stability_prompts(o, tok), steps));
      std::fprintf(stderr, "%-40s %d prompts, %.1f s\n", "stability",
                   o.stability_prompts,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (!configs) {
      std::fprintf(stderr, "kvsieve-eval: wrote %s/stability.csv\n", o.out.c_str());
      return 0;
    }
    eval::report_writer out(o.out, !o.data.jsonl.empty() ? o.data.jsonl.filename().string()
                                   : o.data.split == eval::data_split::tune ? "tune"
                                                                            : "held-out");

    eval::result reference;
    for (const auto& spec : eval::make_configs(o.quick, o.groups.count("ablation") > 0,
                                                   o.fixed_ratios, o.windows, o.budgets)) {
      if (!selected(o, spec)) {
        continue;
      }
      w.profile_lengths = spec.profile ? profile_lengths : std::vector<std::int32_t>{};
      const auto r = eval::run_config(spec, env, w);
      if (spec.kind == eval::ladder_kind::full) {
        reference = r;
      }
      out.add(spec, r, reference);
      std::fprintf(stderr, "%-40s %s\n", spec.name().c_str(), out.last_summary().c_str());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "kvsieve-eval: wrote %s/{results,retrieval,heads,profile}.csv in %.1f s\n",
                 o.out.c_str(), seconds);
  } catch (const kvsieve::error& e) {
    std::fprintf(stderr, "kvsieve-eval: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvsieve-eval: %s\n", e.what());
    return 1;
  }
  return 0;
}
