// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve-generate as a user runs it, on the bundled tiny model and the overflow fixture
// (tests/llama/data/overflow, tools/overflow_model.py): every bad input ends with one clear
// message and an exit status, never a signal; --json is valid JSON whatever bytes the model
// emits; the report says why generation stopped, counts pages, and means nothing over no steps.
#include <common/catch.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h> // fmt::join
#include <nlohmann/json.hpp>

#include <llama/utf8.hpp>

extern char** environ; // NOLINT: POSIX

namespace {

namespace fs = std::filesystem;
const fs::path data = KVSIEVE_TEST_DATA_DIR;
const std::string overflow_model = (data / "overflow").string();

struct result {
  int status = -1;     // exit status, when it exited
  int signal = 0;      // the signal that ended it, else 0
  std::string out;     // stdout, byte for byte
  std::string err;     // stderr
};

auto slurp(const fs::path& p) -> std::string {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A scratch directory for one test, removed at its end.
struct scratch {
  fs::path path = fs::temp_directory_path() /
                  ("kvsieve_generate_test_" + std::to_string(std::random_device{}()));
  scratch() { fs::create_directories(path); }
  scratch(const scratch&) = delete;
  auto operator=(const scratch&) -> scratch& = delete;
  ~scratch() { fs::remove_all(path); }
  [[nodiscard]] auto file(const std::string& name, const std::string& text) const -> std::string {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

// Runs kvsieve-generate with args; stdout goes to `stdout_path` (a file by default, so the
// program sees no terminal), stderr to a file. Extra environment entries as "NAME=value".
auto run(const std::vector<std::string>& args, const std::string& stdout_path = "",
         const std::vector<std::string>& env = {}) -> result {
  const scratch tmp;
  const std::string out = stdout_path.empty() ? (tmp.path / "out").string() : stdout_path;
  const std::string err = (tmp.path / "err").string();
  std::vector<std::string> argv_s{KVSIEVE_GENERATE};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    env_s.emplace_back(*e);
  }
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  int ws = 0;
  REQUIRE(waitpid(pid, &ws, 0) == pid);
  result r;
  if (WIFEXITED(ws)) {
    r.status = WEXITSTATUS(ws);
  } else if (WIFSIGNALED(ws)) {
    r.signal = WTERMSIG(ws);
  }
  if (stdout_path.empty()) {
    r.out = slurp(out);
  }
  r.err = slurp(err);
  return r;
}

auto contains(const std::string& text, const std::string& part) -> bool {
  return text.find(part) != std::string::npos;
}

// The generated text of a run whose stdout is not a terminal: between the marker lines.
auto generated_part(const std::string& out) -> std::string {
  const std::string begin = " tokens); generated text follows ----\n";
  const std::string end = "---- end of the generated text (";
  const auto b = out.find(begin);
  const auto e = out.rfind(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  std::string text = out.substr(b + begin.size(), e - b - begin.size());
  if (!text.empty() && text.back() == '\n') {
    text.pop_back(); // the line break before the marker (absent when the text ended in one)
  }
  return text;
}

void check_clear_error(const result& r, int status, const std::string& message) {
  INFO("stderr: " << r.err);
  CHECK(r.signal == 0);
  CHECK(r.status == status);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("kvsieve-generate: ", 0) == 0);
  CHECK(contains(r.err, message));
}

} // namespace

TEST_CASE("every bad command line ends with its own message and status 2, before loading",
          "[llama][generate]") {
  const scratch tmp;
  const auto empty = tmp.file("empty.txt", "");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--bogus"}, "unknown option '--bogus'"},
      {{"--bogus", "1"}, "unknown option '--bogus'"},
      {{"--prompt-file", tmp.path.string()}, "is a directory, not a file"},
      {{"--prompt-file", (tmp.path / "none").string()}, "does not exist"},
      {{"--prompt-file", empty}, "the prompt file is empty"},
      {{"--model", "/nonexistent"}, "--model '/nonexistent' does not exist"},
      {{"--model", "/dev/null"}, "--model '/dev/null' is not a directory"},
      // Checked before the model loads: loading this directory would fail (no config.json).
      {{"--model", tmp.path.string(), "--policy", "nonsense"}, "unknown --policy 'nonsense'"},
      {{"--model", tmp.path.string(), "--seed", "-1"}, "--seed must be a whole number"},
      {{"--model", tmp.path.string(), "--threads", "0"}, "--threads must be a whole number in [1,"},
      {{"--max-new-tokens", "12abc"}, "--max-new-tokens expects a whole number"},
      {{"--temperature", "nan"}, "--temperature expects a finite number"},
      {{"--top-p", "inf"}, "--top-p expects a finite number"},
      {{"--threshold", "1e400"}, "--threshold is out of range"},
      {{"--local-ratio", "1.5"}, "--local-ratio must be in [0, 1]"},
      {{"--max-new-tokens"}, "--max-new-tokens needs a value"},
      {{"stray"}, "unexpected argument 'stray'"},
  };
  for (const auto& [args, message] : cases) {
    INFO(fmt::format("{}", fmt::join(args, " ")));
    const auto r = run(args);
    check_clear_error(r, 2, message);
    CHECK(contains(r.err, "--help lists the options"));
  }
}

TEST_CASE("failures after loading end with a message and status 1", "[llama][generate]") {
  const scratch tmp;
  check_clear_error(run({"--model", tmp.path.string()}), 1,
                    "kvsieve: i/o error: " + (tmp.path / "config.json").string());
  check_clear_error(run({"--prompt-file", tmp.file("long.txt", std::string(2000, 'x'))}), 1,
                    "the prompt has 2001 tokens and the model's context (max_position_embeddings) "
                    "is 1024: shorten the prompt");
  check_clear_error(run({"--prompt-file", tmp.file("full.txt", std::string(1023, 'x'))}), 1,
                    "the prompt has 1024 tokens and the model's context (max_position_embeddings) "
                    "is 1024: no room is left to generate");
  check_clear_error(
      run({"--prompt", "x", "--max-new-tokens", "1"}, "", {"KVSIEVE_THREADS=lots"}), 1,
      "KVSIEVE_THREADS");
}

TEST_CASE("non-finite logits stop the run, naming the position and step", "[llama][generate]") {
  // The fixture's logits overflow to +inf at every 'Z' (tools/overflow_model.py).
  for (const char* t : {"0", "0.7"}) {
    INFO("temperature " << t);
    check_clear_error(run({"--model", overflow_model, "--prompt", "Z", "--temperature", t}), 1,
                      "the logits at position 1 (the last of the 2-token prompt) are not finite: "
                      "0 NaN, 259 +inf, 0 -inf of 259, the first at token id 0");
  }
  // Greedy after "a" generates 'Z' first: the logits of decode step 1, at position 2, overflow.
  const auto r = run({"--model", overflow_model, "--prompt", "a", "--temperature", "0"});
  INFO("stderr: " << r.err);
  CHECK(r.signal == 0);
  CHECK(r.status == 1);
  CHECK(contains(r.err, "kvsieve-generate: the logits at position 2 (generation step 1) are not "
                        "finite: 0 NaN, 259 +inf"));
  CHECK(contains(r.out, "generated text follows ----\nZ")); // what came before is shown
  // Without a 'Z' the same model runs to the end.
  const auto ok = run({"--model", overflow_model, "--prompt", "abc", "--policy", "full",
                       "--max-new-tokens", "3", "--temperature", "0.7", "--seed", "1"});
  CHECK(ok.status == 0);
}

TEST_CASE("--json is valid JSON, and the text valid UTF-8, whatever bytes the model emits",
          "[llama][generate]") {
  // A non-ASCII prompt at a high temperature: the byte-level model emits stray UTF-8 bytes.
  bool replaced = false;
  for (const char* seed : {"1", "2", "3"}) {
    INFO("seed " << seed);
    const std::vector<std::string> args{"--prompt", "h\xC3\xA9llo w\xC3\xB6rld \xC3\xB1",
                                        "--temperature", "5", "--max-new-tokens", "48",
                                        "--seed", seed};
    auto json_args = args;
    json_args.emplace_back("--json");
    const auto j = run(json_args);
    INFO("stderr: " << j.err);
    REQUIRE(j.signal == 0);
    REQUIRE(j.status == 0);
    const auto doc = nlohmann::json::parse(j.out); // throws on invalid UTF-8
    const auto text = doc.at("generated_text").get<std::string>();
    CHECK(llama::to_valid_utf8(text) == text);
    replaced = replaced || contains(text, std::string(llama::replacement_character));
    // The printed text is the same text, U+FFFD where the bytes were not UTF-8.
    const auto t = run(args);
    REQUIRE(t.status == 0);
    CHECK(generated_part(t.out) == text);
    CHECK(llama::to_valid_utf8(t.out) == t.out);
  }
  CHECK(replaced); // at temperature 5 some of the 144 bytes were not UTF-8
}

TEST_CASE("the context limit is reported on stderr and in --json", "[llama][generate]") {
  // The bundled model with a 64-token context: its config with max_position_embeddings 64 beside
  // a link to its weights.
  const scratch tmp;
  const fs::path tiny = fs::path(KVSIEVE_MODELS_DIR) / "tiny-llama";
  auto config = nlohmann::json::parse(slurp(tiny / "config.json"));
  config["max_position_embeddings"] = 64;
  static_cast<void>(tmp.file("config.json", config.dump()));
  fs::create_symlink(tiny / "model.safetensors", tmp.path / "model.safetensors");
  const std::string model = tmp.path.string();
  const std::string prompt = "import os\nimport sys\n\n\ndef main(argv):\n    "; // 44 tokens

  const auto j = run({"--model", model, "--prompt", prompt, "--temperature", "0",
                      "--max-new-tokens", "100", "--json"});
  INFO("stderr: " << j.err);
  REQUIRE(j.status == 0);
  const auto doc = nlohmann::json::parse(j.out);
  CHECK(doc.at("context_length") == 64);
  CHECK(doc.at("prompt_tokens") == 44);
  if (doc.at("stop_reason") == "eos") {
    return; // the model ended the text first: no limit to report (not so on the bundled model)
  }
  CHECK(doc.at("stop_reason") == "context_limit");
  CHECK(doc.at("generated_tokens") == 20);
  CHECK(contains(j.err, "kvsieve-generate: stopped at the context limit: 44 prompt + 20 "
                        "generated tokens fill the model's 64 positions "
                        "(max_position_embeddings); 80 of --max-new-tokens 100 were not "
                        "generated"));
  const auto t =
      run({"--model", model, "--prompt", prompt, "--temperature", "0", "--max-new-tokens", "100"});
  CHECK(contains(t.err, "stopped at the context limit"));
  CHECK(contains(t.out, "44 prompt, 20 generated (stopped: context limit)"));
  // Exactly as many new tokens as fit: --max-new-tokens is what stopped it, nothing to report.
  const auto exact = run({"--model", model, "--prompt", prompt, "--temperature", "0",
                          "--max-new-tokens", "20", "--json"});
  CHECK(nlohmann::json::parse(exact.out).at("stop_reason") == "max_new_tokens");
  CHECK_FALSE(contains(exact.err, "context limit"));
}

TEST_CASE("--max-new-tokens 0 runs the prompt only and averages over no decode step",
          "[llama][generate]") {
  const auto j = run({"--prompt", "import os", "--max-new-tokens", "0", "--json"});
  REQUIRE(j.status == 0);
  const auto doc = nlohmann::json::parse(j.out);
  CHECK(doc.at("generated_tokens") == 0);
  CHECK(doc.at("decode_steps") == 0);
  CHECK(doc.at("mean_kept_fraction").is_null());
  CHECK(doc.at("stop_reason") == "max_new_tokens");
  CHECK(doc.at("generated_text") == "");
  const auto t = run({"--prompt", "import os", "--max-new-tokens", "0"});
  REQUIRE(t.status == 0);
  CHECK(contains(t.out, "tokens     10 prompt, 0 generated"));
  CHECK_FALSE(contains(t.out, "mean over"));
  CHECK(contains(t.out, "---- end of the generated text (0 tokens) ----"));
}

TEST_CASE("the memory report counts whole pages and says why few bytes are saved",
          "[llama][generate]") {
  // Ten tokens fit one 16-token page per KV head: evicting some of them frees no page.
  const auto j = run({"--prompt", "import os", "--max-new-tokens", "0", "--json"});
  REQUIRE(j.status == 0);
  const auto doc = nlohmann::json::parse(j.out);
  const auto pages_full = doc.at("kv_pages_full").get<std::size_t>();
  const auto pages_resident = doc.at("kv_pages_resident").get<std::size_t>();
  CHECK(doc.at("kv_page_size") == 16);
  CHECK(pages_full == 12); // 6 layers x 2 KV heads, one page each
  CHECK(doc.at("kv_bytes_full").get<std::size_t>() % pages_full == 0);
  const auto page_bytes = doc.at("kv_bytes_full").get<std::size_t>() / pages_full;
  CHECK(doc.at("kv_bytes_resident").get<std::size_t>() == pages_resident * page_bytes);
  const double kept = doc.at("kept_token_fraction").get<double>();
  CHECK(kept == Approx(static_cast<double>(doc.at("kv_only_bytes_kept").get<std::size_t>()) /
                       static_cast<double>(doc.at("kv_only_bytes_full").get<std::size_t>())));
  const auto t = run({"--prompt", "import os", "--max-new-tokens", "0"});
  CHECK(contains(t.out, fmt::format("({} of {} pages of 16 tokens resident)", pages_resident,
                                    pages_full)));
  if (1.0 - kept - doc.at("kv_saved_fraction").get<double>() > 0.05) {
    CHECK(contains(t.out, "memory is freed in whole pages"));
  }
}

TEST_CASE("in a file or a pipe, marker lines show where the prompt ends", "[llama][generate]") {
  const auto t = run({"--prompt", "def f(x):\n", "--max-new-tokens", "8", "--temperature", "0"});
  REQUIRE(t.status == 0);
  CHECK(t.out.rfind("def f(x):\n---- end of the prompt (11 tokens); generated text follows "
                    "----\n",
                    0) == 0);
  CHECK(contains(t.out, "---- end of the generated text (8 tokens) ----"));
  CHECK_FALSE(contains(t.out, "\x1b[")); // no terminal escapes in a file
}

TEST_CASE("a closed pipe or a full disk is a message, not a signal", "[llama][generate]") {
  const auto full = run({"--prompt", "import os", "--max-new-tokens", "4"}, "/dev/full");
  CHECK(full.signal == 0);
  CHECK(full.status == 1);
  CHECK(contains(full.err, "kvsieve-generate: cannot write the output: No space left on device"));

  // stdout is a pipe whose reading end is already closed: the first write fails with EPIPE.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const std::string err_path = (fs::temp_directory_path() / "kvsieve_generate_test_pipe").string();
  std::vector<std::string> argv_s{KVSIEVE_GENERATE, "--prompt", "import os", "--max-new-tokens",
                                  "4"};
  std::vector<char*> argv;
  for (auto& a : argv_s) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  close(fds[0]);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  int ws = 0;
  REQUIRE(waitpid(pid, &ws, 0) == pid);
  CHECK_FALSE(WIFSIGNALED(ws));
  CHECK(WIFEXITED(ws));
  CHECK(WEXITSTATUS(ws) == 1);
  CHECK(contains(slurp(err_path), "kvsieve-generate: cannot write the output: Broken pipe"));
  fs::remove(err_path);
}

TEST_CASE("--threads sets the model's threads and changes no result", "[llama][generate]") {
  std::vector<std::string> texts;
  for (const char* n : {"1", "2", "3"}) {
    const auto j = run({"--threads", n, "--prompt", "import os", "--temperature", "0",
                        "--max-new-tokens", "16", "--json", "--policy", "full"});
    REQUIRE(j.status == 0);
    const auto doc = nlohmann::json::parse(j.out);
    CHECK(doc.at("threads") == std::stoi(n));
    texts.push_back(doc.at("generated_text").get<std::string>());
  }
  CHECK(texts[0] == texts[1]);
  CHECK(texts[0] == texts[2]);
}

TEST_CASE("--help lists every option and exits 0", "[llama][generate]") {
  const auto h = run({"--help"});
  CHECK(h.status == 0);
  for (const char* flag : {"--model", "--prompt", "--prompt-file", "--max-new-tokens", "--policy",
                           "--threshold", "--local-ratio", "--frequent-ratio", "--sinks",
                           "--window", "--temperature", "--top-p", "--seed", "--threads",
                           "--json", "--help"}) {
    CHECK(contains(h.out, flag));
  }
}
