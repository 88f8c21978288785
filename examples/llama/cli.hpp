// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The command line of kvsieve-generate: its options and parse(), which checks every value
/// before anything is loaded, so a typo costs no model load. parse() never prints or exits: it
/// throws llama::cli::usage_error, whose message names the option and the value at fault.
/// Numbers are read whole (no trailing characters, no NaN or infinity, no overflow); options take
/// their value as the next argument or after '=' (`--seed=7`).

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h> // fmt::join

#include <kvsieve/cache/named_policy.hpp>

namespace llama::cli {

/// A bad command line; main prints the message and exits with status 2.
class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The policy names and the budgeted ones are the library's (kvsieve/cache/named_policy.hpp), so
// that --policy and the Python module's policy= accept the same names.
using kvsieve::budgeted_policy;
using kvsieve::policy_names;

/// The largest prompt file read: far past any model's context, small enough to hold.
inline constexpr std::size_t max_prompt_bytes = std::size_t{16} << 20U;

/// The most --threads accepts (llama::default_threads() admits as many from KVSIEVE_THREADS).
inline constexpr std::int32_t max_threads = 256;

struct options {
  std::string model_dir;
  std::string prompt;
  std::string save_profile; ///< write the prompt's per-head choices here (profile/profile_file.hpp)
  std::string profile;      ///< replay the choices of this file instead of profiling
  std::int32_t max_new_tokens = 200;
  std::string policy = "fastgen";
  double threshold = 0.95;
  double local_ratio = 0.3;
  double frequent_ratio = 0.3;
  std::int32_t sinks = 0;
  std::int32_t window = 256;
  std::int32_t budget = 256; ///< tokens per head: h2o (half heavy, half recent), tova, snapkv...
  float temperature = 0.6F;
  float top_p = 0.9F;
  std::uint64_t seed = 42;
  std::int32_t threads = 0; ///< 0: the decoder's default (llama::default_threads())
  bool json = false;
  bool help = false;
  /// Options that were given but do nothing with the other settings (printed as notes).
  std::vector<std::string> notes;
};

namespace detail {

// Levenshtein distance, for "did you mean"; the strings are option names.
[[nodiscard]] inline auto edit_distance(std::string_view a, std::string_view b) -> std::size_t {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

struct flag {
  std::string_view name;
  bool takes_value;
};

inline constexpr flag flags[] = {
    {"--model", true},     {"--prompt", true},         {"--prompt-file", true},
    {"--max-new-tokens", true}, {"--policy", true},    {"--threshold", true},
    {"--local-ratio", true}, {"--frequent-ratio", true}, {"--sinks", true},
    {"--window", true},    {"--budget", true},     {"--save-profile", true}, {"--profile", true},    {"--temperature", true},    {"--top-p", true},
    {"--seed", true},      {"--threads", true},        {"--json", false},
    {"--help", false},     {"-h", false}};

[[nodiscard]] inline auto find_flag(std::string_view name) -> const flag* {
  for (const flag& f : flags) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

[[nodiscard]] inline auto unknown_option(std::string_view name) -> usage_error {
  std::string_view best;
  std::size_t best_distance = 3; // suggest only near misses
  for (const flag& f : flags) {
    if (f.name.size() < 4) {
      continue; // -h: every short typo is one edit away
    }
    const std::size_t d = edit_distance(name, f.name);
    if (d < best_distance) {
      best = f.name;
      best_distance = d;
    }
  }
  return usage_error(best.empty() ? fmt::format("unknown option '{}'", name)
                                  : fmt::format("unknown option '{}' (did you mean {}?)", name,
                                                best));
}

} // namespace detail

/// A whole number in [lo, hi] written in decimal. Throws usage_error naming `flag`.
[[nodiscard]] inline auto parse_integer(std::string_view flag, std::string_view text,
                                        std::int64_t lo, std::int64_t hi) -> std::int64_t {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc{} && end == text.data() + text.size() && (v < lo || v > hi))) {
    throw usage_error(fmt::format("{} must be a whole number in [{}, {}], got '{}'", flag, lo, hi,
                                  text));
  }
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw usage_error(fmt::format("{} expects a whole number, got '{}'", flag, text));
  }
  return v;
}

/// A seed: any whole number in [0, 2^64 - 1]. Throws usage_error.
[[nodiscard]] inline auto parse_seed(std::string_view flag, std::string_view text)
    -> std::uint64_t {
  const auto all_digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  const bool negative = !text.empty() && text[0] == '-' && all_digits(text.substr(1));
  if (negative || (all_digits(text) && ec == std::errc::result_out_of_range)) {
    throw usage_error(fmt::format("{} must be a whole number in [0, {}], got '{}'", flag,
                                  std::numeric_limits<std::uint64_t>::max(), text));
  }
  if (!all_digits(text) || ec != std::errc{} || end != text.data() + text.size()) {
    throw usage_error(fmt::format("{} expects a whole number, got '{}'", flag, text));
  }
  return v;
}

/// A finite decimal number (e.g. 0.9, 1e-3). Throws usage_error.
[[nodiscard]] inline auto parse_real(std::string_view flag, std::string_view text) -> double {
  double v = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range) {
    throw usage_error(fmt::format("{} is out of range: '{}'", flag, text));
  }
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v)) {
    throw usage_error(fmt::format("{} expects a finite number, got '{}'", flag, text));
  }
  return v;
}

/// The contents of a prompt file: a regular file, a pipe or a device (`--prompt-file
/// /dev/stdin`), at most max_prompt_bytes. Throws usage_error saying why it cannot be read.
[[nodiscard]] inline auto read_prompt_file(const std::string& path) -> std::string {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    throw usage_error(fmt::format("--prompt-file '{}' does not exist", path));
  }
  if (status.type() == fs::file_type::directory) {
    throw usage_error(fmt::format("--prompt-file '{}' is a directory, not a file", path));
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw usage_error(fmt::format("cannot read --prompt-file '{}': {}", path,
                                  std::strerror(errno)));
  }
  std::string text;
  char buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
    if (text.size() + n > max_prompt_bytes) {
      std::fclose(f);
      throw usage_error(fmt::format("--prompt-file '{}' is larger than {} MiB", path,
                                    max_prompt_bytes >> 20U));
    }
    text.append(buffer, n);
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    throw usage_error(fmt::format("cannot read --prompt-file '{}': {}", path,
                                  std::strerror(err)));
  }
  return text;
}

/// Parses args (without the program name) over the defaults in `o`. Throws usage_error for an
/// unknown option, a missing or malformed value, a value out of its range, a --model that is no
/// directory, an unreadable prompt file or an empty prompt. `--help` anywhere sets o.help and checks nothing else.
[[nodiscard]] inline auto parse(std::span<const char* const> args, options o) -> options {
  for (const char* a : args) {
    if (std::string_view(a) == "--help" || std::string_view(a) == "-h") {
      o.help = true;
      return o;
    }
  }
  std::vector<std::string_view> given;
  const auto was_given = [&](std::string_view name) {
    return std::find(given.begin(), given.end(), name) != given.end();
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      throw usage_error(fmt::format("unexpected argument '{}': options start with --, and the "
                                    "prompt goes after --prompt",
                                    arg));
    }
    const auto eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const detail::flag* f = detail::find_flag(name);
    if (f == nullptr) {
      throw detail::unknown_option(name);
    }
    std::string_view value;
    if (!f->takes_value) {
      if (eq != std::string_view::npos) {
        throw usage_error(fmt::format("{} takes no value", name));
      }
    } else if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw usage_error(fmt::format("{} needs a value", name));
    }
    given.push_back(f->name);
    const auto count = [&](std::int64_t lo) {
      return static_cast<std::int32_t>(
          parse_integer(name, value, lo, std::numeric_limits<std::int32_t>::max()));
    };
    const auto unit = [&](double lo, bool lo_open) {
      const double v = parse_real(name, value);
      if (v > 1.0 || v < lo || (lo_open && v == lo)) {
        throw usage_error(fmt::format("{} must be in {}{}, 1], got '{}'", name,
                                      lo_open ? "(" : "[", lo, value));
      }
      return v;
    };
    if (name == "--model") {
      if (value.empty()) {
        throw usage_error("--model needs a directory");
      }
      std::error_code ec;
      const auto type = std::filesystem::status(std::string(value), ec).type();
      if (type == std::filesystem::file_type::not_found) {
        throw usage_error(fmt::format("--model '{}' does not exist", value));
      }
      if (type != std::filesystem::file_type::directory && !ec) {
        throw usage_error(fmt::format("--model '{}' is not a directory", value));
      }
      o.model_dir = value; // other trouble (no permission): the loader names the file
    } else if (name == "--prompt" || name == "--prompt-file") {
      if (was_given(name == "--prompt" ? "--prompt-file" : "--prompt")) {
        throw usage_error("give --prompt or --prompt-file, not both");
      }
      o.prompt = name == "--prompt" ? std::string(value) : read_prompt_file(std::string(value));
    } else if (name == "--max-new-tokens") {
      o.max_new_tokens = count(0);
    } else if (name == "--policy") {
      if (std::find(std::begin(policy_names), std::end(policy_names), value) ==
          std::end(policy_names)) {
        throw usage_error(fmt::format("unknown --policy '{}' (one of: {})", value,
                                      fmt::join(policy_names, ", ")));
      }
      o.policy = value;
    } else if (name == "--threshold") {
      o.threshold = unit(0.0, true);
    } else if (name == "--local-ratio") {
      o.local_ratio = unit(0.0, false);
    } else if (name == "--frequent-ratio") {
      o.frequent_ratio = unit(0.0, false);
    } else if (name == "--sinks") {
      o.sinks = count(0);
    } else if (name == "--window") {
      o.window = count(0);
    } else if (name == "--budget") {
      o.budget = count(0);
    } else if (name == "--save-profile" || name == "--profile") {
      if (value.empty()) {
        throw usage_error(fmt::format("{} needs a file name", name));
      }
      (name == "--profile" ? o.profile : o.save_profile) = std::string(value);
    } else if (name == "--temperature") {
      const double v = parse_real(name, value);
      if (v < 0.0 || v > static_cast<double>(std::numeric_limits<float>::max())) {
        throw usage_error(fmt::format("--temperature must be >= 0 (0 = greedy) and at most {}, "
                                      "got '{}'",
                                      std::numeric_limits<float>::max(), value));
      }
      o.temperature = static_cast<float>(v);
    } else if (name == "--top-p") {
      const double v = unit(0.0, true);
      if (static_cast<float>(v) == 0.0F) {
        throw usage_error(fmt::format("--top-p '{}' rounds to 0 in float", value));
      }
      o.top_p = static_cast<float>(v);
    } else if (name == "--seed") {
      o.seed = parse_seed(name, value);
    } else if (name == "--threads") {
      o.threads = static_cast<std::int32_t>(parse_integer(name, value, 1, max_threads));
    } else if (name == "--json") {
      o.json = true;
    }
  }
  if (o.prompt.empty()) {
    throw usage_error(was_given("--prompt-file") ? "the prompt file is empty"
                                                 : "the prompt is empty");
  }
  // Options the chosen settings ignore: say so rather than let a user believe they acted.
  const auto note = [&](std::string_view flag, bool used, std::string_view when) {
    if (was_given(flag) && !used) {
      o.notes.push_back(fmt::format("{} is ignored: it applies {}", flag, when));
    }
  };
  const std::string_view p = o.policy;
  note("--threshold", p == "fastgen" && o.profile.empty(),
       "to --policy fastgen without --profile only");
  note("--local-ratio", p == "fastgen" || p == "local" || p == "local+frequent",
       "to --policy fastgen, local and local+frequent only");
  note("--frequent-ratio", p == "fastgen" || p == "frequent" || p == "local+frequent",
       "to --policy fastgen, frequent and local+frequent only");
  note("--window", p == "streaming", "to --policy streaming only");
  note("--budget", budgeted_policy(p), "to --policy h2o, tova, snapkv, pyramidkv and adakv only");
  note("--top-p", o.temperature > 0.0F, "when sampling (--temperature > 0) only");
  note("--seed", o.temperature > 0.0F, "when sampling (--temperature > 0) only");
  return o;
}

} // namespace llama::cli
