// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// llama::cli::parse, kvsieve-generate's command line: every option's accepted and rejected
// values (trailing characters, NaN, infinity, overflow, signs, ranges), unknown options, prompt
// files that are directories, missing or empty, and the notes on options that do nothing.
#include <common/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <llama/cli.hpp>

namespace {

namespace fs = std::filesystem;

auto defaults() -> llama::cli::options {
  llama::cli::options o;
  o.model_dir = "/models/x";
  o.prompt = "default prompt";
  return o;
}

auto parse(std::initializer_list<const char*> args) -> llama::cli::options {
  const std::vector<const char*> v(args);
  return llama::cli::parse(v, defaults());
}

// The usage_error message parse() throws for args ("" when it throws none).
auto error_of(std::initializer_list<const char*> args) -> std::string {
  try {
    static_cast<void>(parse(args));
  } catch (const llama::cli::usage_error& e) {
    return e.what();
  }
  return "";
}

auto contains(const std::string& text, const std::string& part) -> bool {
  return text.find(part) != std::string::npos;
}

// A temporary directory for prompt files, removed at the end of the test.
struct temp_dir {
  fs::path path = fs::temp_directory_path() /
                  ("kvsieve_cli_test_" + std::to_string(std::random_device{}()));
  temp_dir() { fs::create_directories(path); }
  temp_dir(const temp_dir&) = delete;
  auto operator=(const temp_dir&) -> temp_dir& = delete;
  ~temp_dir() { fs::remove_all(path); }
  [[nodiscard]] auto file(const std::string& name, const std::string& text) const -> std::string {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

} // namespace

TEST_CASE("no arguments keep every default", "[llama][cli]") {
  const auto o = parse({});
  const auto d = defaults();
  CHECK(o.model_dir == d.model_dir);
  CHECK(o.prompt == d.prompt);
  CHECK(o.max_new_tokens == 200);
  CHECK(o.policy == "fastgen");
  CHECK(o.seed == 42);
  CHECK(o.threads == 0);
  CHECK_FALSE(o.json);
  CHECK_FALSE(o.help);
  CHECK(o.notes.empty());
}

TEST_CASE("every option is read, after a space or after '='", "[llama][cli]") {
  const auto dir = fs::temp_directory_path().string();
  const auto o = parse({"--model", dir.c_str(), "--prompt", "p", "--max-new-tokens", "7", "--policy",
                        "streaming", "--threshold", "0.5", "--local-ratio", "0", "--frequent-ratio",
                        "1", "--sinks", "4", "--window=64", "--temperature", "1.5", "--top-p=1",
                        "--seed", "18446744073709551615", "--threads", "3", "--json"});
  CHECK(o.model_dir == dir);
  CHECK(o.prompt == "p");
  CHECK(o.max_new_tokens == 7);
  CHECK(o.policy == "streaming");
  CHECK(o.threshold == 0.5);
  CHECK(o.local_ratio == 0.0);
  CHECK(o.frequent_ratio == 1.0);
  CHECK(o.sinks == 4);
  CHECK(o.window == 64);
  CHECK(o.temperature == 1.5F);
  CHECK(o.top_p == 1.0F);
  CHECK(o.seed == std::numeric_limits<std::uint64_t>::max());
  CHECK(o.threads == 3);
  CHECK(o.json);
  CHECK(parse({"--prompt=a=b"}).prompt == "a=b");
  CHECK(parse({"--seed", "0"}).seed == 0);
  CHECK(parse({"--max-new-tokens", "0"}).max_new_tokens == 0); // the prompt only
  CHECK(parse({"--temperature", "0"}).temperature == 0.0F);
  CHECK(parse({"--threshold", "1e-3"}).threshold == 1e-3);
}

TEST_CASE("--help anywhere wins over everything else", "[llama][cli]") {
  CHECK(parse({"--bogus", "--help"}).help);
  CHECK(parse({"--seed", "x", "-h"}).help);
}

TEST_CASE("an unknown option is named as one, with a near miss suggested", "[llama][cli]") {
  CHECK(error_of({"--bogus"}) == "unknown option '--bogus'");
  CHECK(error_of({"--bogus", "1"}) == "unknown option '--bogus'");
  CHECK(error_of({"--max-new-token", "3"}) ==
        "unknown option '--max-new-token' (did you mean --max-new-tokens?)");
  CHECK(error_of({"--temprature=1"}) ==
        "unknown option '--temprature' (did you mean --temperature?)");
  CHECK(contains(error_of({"-x"}), "unknown option '-x'"));
  CHECK(contains(error_of({"hello"}), "unexpected argument 'hello'"));
  CHECK(contains(error_of({"-"}), "unexpected argument '-'"));
}

TEST_CASE("a missing or stray value is reported", "[llama][cli]") {
  CHECK(error_of({"--seed"}) == "--seed needs a value");
  CHECK(error_of({"--prompt", "a", "--model"}) == "--model needs a value");
  CHECK(error_of({"--json=yes"}) == "--json takes no value");
  CHECK(error_of({"--model", ""}) == "--model needs a directory");
}

TEST_CASE("--model must be a directory that exists", "[llama][cli]") {
  CHECK(error_of({"--model", "/nonexistent/model"}) == "--model '/nonexistent/model' does not exist");
  CHECK(error_of({"--model", "/dev/null"}) == "--model '/dev/null' is not a directory");
  CHECK(error_of({"--model", "/"}).empty());
}

TEST_CASE("whole numbers reject fractions, trailing characters, signs and overflow",
          "[llama][cli]") {
  for (const char* flag : {"--max-new-tokens", "--sinks", "--window", "--budget", "--threads"}) {
    for (const char* bad : {"", "x", "5x", "5 ", " 5", "1.5", "1e3", "+5", "0x10", "nan", "inf"}) {
      INFO(flag << " " << bad);
      CHECK(contains(error_of({flag, bad}), std::string(flag) + " expects a whole number"));
    }
    for (const char* bad : {"-3", "2147483648", "99999999999999999999999"}) {
      INFO(flag << " " << bad);
      CHECK(contains(error_of({flag, bad}), std::string(flag) + " must be a whole number in ["));
    }
  }
  CHECK(error_of({"--threads", "0"}) == "--threads must be a whole number in [1, 256], got '0'");
  CHECK(error_of({"--threads", "257"}) ==
        "--threads must be a whole number in [1, 256], got '257'");
  CHECK(error_of({"--max-new-tokens", "-1"}) ==
        "--max-new-tokens must be a whole number in [0, 2147483647], got '-1'");
}

TEST_CASE("the seed takes all of [0, 2^64) and nothing else", "[llama][cli]") {
  CHECK(parse({"--seed", "1000000001"}).seed == 1000000001); // past the old 1e9 cap
  CHECK(parse({"--seed", "9007199254740993"}).seed == 9007199254740993ULL); // not a double
  const std::string range = "--seed must be a whole number in [0, 18446744073709551615]";
  CHECK(contains(error_of({"--seed", "-1"}), range));
  CHECK(contains(error_of({"--seed", "18446744073709551616"}), range));
  for (const char* bad : {"", "-", "x", "1.5", "1e3", "+1", " 1", "1 ", "-x"}) {
    INFO(bad);
    CHECK(contains(error_of({"--seed", bad}), "--seed expects a whole number"));
  }
}

TEST_CASE("real numbers reject trailing characters, NaN, infinity and overflow",
          "[llama][cli]") {
  for (const char* flag : {"--threshold", "--local-ratio", "--frequent-ratio", "--temperature",
                           "--top-p"}) {
    for (const char* bad : {"", "x", "0.5x", "0.5 ", " 0.5", "nan", "NaN", "inf", "-inf",
                            "infinity", "0x1p-2"}) {
      INFO(flag << " " << bad);
      CHECK(contains(error_of({flag, bad}), std::string(flag) + " expects a finite number"));
    }
    CHECK(contains(error_of({flag, "1e999"}), std::string(flag) + " is out of range"));
  }
}

TEST_CASE("values outside their ranges are rejected", "[llama][cli]") {
  CHECK(error_of({"--threshold", "0"}) == "--threshold must be in (0, 1], got '0'");
  CHECK(error_of({"--threshold", "1.01"}) == "--threshold must be in (0, 1], got '1.01'");
  CHECK(error_of({"--local-ratio", "-0.1"}) == "--local-ratio must be in [0, 1], got '-0.1'");
  CHECK(error_of({"--frequent-ratio", "2"}) == "--frequent-ratio must be in [0, 1], got '2'");
  CHECK(error_of({"--top-p", "0"}) == "--top-p must be in (0, 1], got '0'");
  CHECK(error_of({"--top-p", "1e-50"}) == "--top-p '1e-50' rounds to 0 in float");
  CHECK(contains(error_of({"--temperature", "-1"}), "--temperature must be >= 0"));
  CHECK(contains(error_of({"--temperature", "1e39"}), "--temperature must be >= 0"));
}

TEST_CASE("an unknown --policy is a usage error listing the policies", "[llama][cli]") {
  CHECK(error_of({"--policy", "nonsense"}) ==
        "unknown --policy 'nonsense' (one of: fastgen, full, local, frequent, local+frequent, "
        "streaming, h2o, tova, snapkv, pyramidkv, adakv)");
  for (const char* p : {"fastgen", "full", "local", "frequent", "local+frequent", "streaming",
                        "h2o", "tova", "snapkv", "pyramidkv", "adakv"}) {
    CHECK(parse({"--policy", p}).policy == p);
  }
}

TEST_CASE("prompt files: read whole, or a message saying why not", "[llama][cli]") {
  const temp_dir dir;
  const std::string text("line 1\nline 2\0 after a NUL\n\xff", 28);
  const auto file = dir.file("prompt.txt", text);
  CHECK(parse({"--prompt-file", file.c_str()}).prompt == text);

  const auto where = dir.path.string();
  CHECK(error_of({"--prompt-file", where.c_str()}) ==
        "--prompt-file '" + where + "' is a directory, not a file");
  const auto missing = (dir.path / "missing.txt").string();
  CHECK(error_of({"--prompt-file", missing.c_str()}) ==
        "--prompt-file '" + missing + "' does not exist");
  const auto under_file = file + "/x"; // a path through a regular file
  CHECK(contains(error_of({"--prompt-file", under_file.c_str()}), "--prompt-file '" + under_file));
  const auto empty = dir.file("empty.txt", "");
  CHECK(error_of({"--prompt-file", empty.c_str()}) == "the prompt file is empty");
  CHECK(error_of({"--prompt", ""}) == "the prompt is empty");
  CHECK(error_of({"--prompt", "a", "--prompt-file", file.c_str()}) ==
        "give --prompt or --prompt-file, not both");
}

TEST_CASE("a prompt file larger than the limit is refused before it fills memory",
          "[llama][cli]") {
  // /dev/zero never ends: reading it must stop at the limit.
  CHECK(error_of({"--prompt-file", "/dev/zero"}) == "--prompt-file '/dev/zero' is larger than 16 MiB");
}

TEST_CASE("options the chosen settings ignore are noted", "[llama][cli]") {
  CHECK(parse({"--window", "8"}).notes ==
        std::vector<std::string>{"--window is ignored: it applies to --policy streaming only"});
  CHECK(parse({"--policy", "full", "--threshold", "0.5", "--local-ratio", "0.1"}).notes.size() ==
        2);
  CHECK(parse({"--temperature", "0", "--seed", "3", "--top-p", "0.5"}).notes.size() == 2);
  CHECK(parse({"--policy", "local", "--local-ratio", "0.1", "--seed", "3"}).notes.empty());
  CHECK(parse({"--budget", "64"}).notes ==
        std::vector<std::string>{"--budget is ignored: it applies to --policy h2o, tova, snapkv, "
                                 "pyramidkv and adakv only"});
  CHECK(parse({"--policy", "tova", "--budget", "64"}).notes.empty());
  CHECK(parse({"--policy", "tova", "--budget", "64"}).budget == 64);
  CHECK(parse({"--profile", "p.json", "--threshold", "0.5"}).notes ==
        std::vector<std::string>{
            "--threshold is ignored: it applies to --policy fastgen without --profile only"});
  CHECK(parse({"--save-profile", "out.json"}).save_profile == "out.json");
  CHECK(error_of({"--profile="}) == "--profile needs a file name");
}
