// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Evaluation data for kvsieve-eval:
///  - code, held-out split (never seen in training; every reported quality figure): the .py
///    files of the data root (default /usr/lib/python3.11; dist-packages, site-packages,
///    __pycache__ skipped) in sorted relative-path order with index % 50 == 0, exactly the
///    held-out split of tools/train_tiny_llama.py;
///  - code, tune split (index % 50 == 25): training files, so that option defaults can be chosen
///    without looking at held-out data;
///  - documents of a JSON-lines file instead (--data-file; one {"source", "name", "text"} object
///    per line, e.g. heldout.jsonl of tools/model2/build_corpus.py, the second model's held-out
///    split): every document is evaluation text;
///  - retrieval: synthetic key/value prompts in the training format ("k_1a2b = 'wxyz'" lines,
///    filler, "print(k_1a2b)  # -> '") drawn with this file's own generator and seed, not
///    Python's, so the keys and values differ from training; the filler is code of the split
///    the snippets come from.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <kvsieve/kvsieve.hpp>

namespace eval {

/// Which files code_pieces reads.
enum class data_split {
  held_out, ///< index % 50 == 0: never trained on
  tune,     ///< index % 50 == 25: training files, for choosing defaults
};

/// The sorted .py files of `root` with index % every == offset; offset 0 is the held-out list of
/// split_files(root, every) in tools/train_tiny_llama.py.
inline auto split_files(const std::filesystem::path& root, std::size_t offset, int every = 50)
    -> std::vector<std::string> {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, ec);
  kvsieve::expects(!ec, kvsieve::errc::io,
                   [&] { return "cannot list the data root " + root.string(); });
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto& e = *it;
    const std::string name = e.path().filename().string();
    if (e.is_directory() && !e.is_symlink()) {
      if (name == "dist-packages" || name == "site-packages" || name == "__pycache__") {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (e.path().extension() == ".py") {
      files.push_back(e.path().lexically_relative(root).string()); // as os.path.relpath
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (std::size_t i = offset; i < files.size(); i += static_cast<std::size_t>(every)) {
    out.push_back(files[i]);
  }
  return out;
}

inline auto read_file(const std::filesystem::path& p) -> std::string {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Where the evaluation text comes from.
struct text_source {
  std::filesystem::path root = "/usr/lib/python3.11"; ///< Python tree of the bundled model's data
  data_split split = data_split::held_out;            ///< which split of `root`
  std::filesystem::path jsonl; ///< non-empty: the documents of this JSON-lines file instead
};

/// The documents of a JSON-lines file, in the order the pieces are drawn: each source's
/// documents largest first, the sources interleaved (sorted by name), so that a few pieces
/// already cover every source. Throws errc::io naming the line for anything but an object with
/// string "source", "name" and "text".
inline auto jsonl_documents(const std::filesystem::path& file)
    -> std::vector<std::pair<std::string, std::string>> {
  std::ifstream in(file, std::ios::binary);
  kvsieve::expects(static_cast<bool>(in), kvsieve::errc::io,
                   [&] { return "cannot open the data file " + file.string(); });
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_source;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) {
      continue;
    }
    const auto doc = nlohmann::json::parse(line, nullptr, false);
    const auto field = [&](const char* key) -> const std::string* {
      if (!doc.is_object() || !doc.contains(key) || !doc[key].is_string()) {
        return nullptr;
      }
      return doc[key].get_ptr<const std::string*>();
    };
    const auto *source = field("source"), *name = field("name"), *text = field("text");
    kvsieve::expects(source != nullptr && name != nullptr && text != nullptr, kvsieve::errc::io,
                     [&] {
                       return fmt::format("{} line {}: expected a JSON object with string "
                                          "\"source\", \"name\" and \"text\"",
                                          file.string(), n);
                     });
    by_source[*source].emplace_back(*source + ":" + *name, *text);
  }
  std::size_t longest = 0;
  for (auto& [source, docs] : by_source) {
    std::stable_sort(docs.begin(), docs.end(), [](const auto& a, const auto& b) {
      return a.second.size() > b.second.size();
    });
    longest = std::max(longest, docs.size());
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i < longest; ++i) {
    for (auto& [source, docs] : by_source) {
      if (i < docs.size()) {
        out.push_back(std::move(docs[i]));
      }
    }
  }
  kvsieve::expects(!out.empty(), kvsieve::errc::io,
                   [&] { return "the data file " + file.string() + " has no documents"; });
  return out;
}

/// (name, text) of the source's documents in drawing order: for a Python tree, the split's
/// files largest first (the bundled model's published results depend on this order).
inline auto documents(const text_source& src) -> std::vector<std::pair<std::string, std::string>> {
  if (!src.jsonl.empty()) {
    return jsonl_documents(src.jsonl);
  }
  std::vector<std::pair<std::string, std::string>> texts;
  for (const auto& rel : split_files(src.root, src.split == data_split::held_out ? 0 : 25)) {
    texts.emplace_back(rel, read_file(src.root / rel));
  }
  std::stable_sort(texts.begin(), texts.end(), [](const auto& a, const auto& b) {
    return a.second.size() > b.second.size();
  });
  return texts;
}

/// `count` (document name, piece) pairs: pieces of `bytes` bytes of the source's documents, each
/// starting at a line start (documents in documents() order, those shorter than bytes + 64
/// skipped, at most `per_file` pieces per document, evenly spaced in it).
inline auto named_code_pieces(const text_source& src, std::size_t count, std::size_t bytes,
                              std::size_t per_file = 2)
    -> std::vector<std::pair<std::string, std::string>> {
  auto texts = documents(src);
  std::erase_if(texts, [&](const auto& t) { return t.second.size() < bytes + 64; });
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t round = 0; round < per_file && out.size() < count; ++round) {
    for (const auto& [rel, t] : texts) {
      if (out.size() >= count) {
        break;
      }
      const std::size_t span = t.size() - bytes;
      std::size_t start = span * (2 * round + 1) / (2 * per_file);
      const auto nl = t.find('\n', start);
      start = nl == std::string::npos || nl + 1 + bytes > t.size() ? 0 : nl + 1;
      out.emplace_back(rel, t.substr(start, bytes));
    }
  }
  return out;
}

/// The pieces of named_code_pieces without their document names.
inline auto code_pieces(const text_source& src, std::size_t count, std::size_t bytes,
                        std::size_t per_file = 2) -> std::vector<std::string> {
  std::vector<std::string> out;
  for (auto& [name, text] : named_code_pieces(src, count, bytes, per_file)) {
    out.push_back(std::move(text));
  }
  return out;
}

/// One retrieval prompt: a context (key lines and filler) and questions about its keys.
struct retrieval_prompt {
  std::string context;
  struct question {
    std::string ask;    ///< "print(k_xxxx)  # -> '"
    std::string value;  ///< the 4-character value
  };
  std::vector<question> questions;
};

/// Prompts of about `context_bytes` bytes: ~45% key lines, the rest held-out code filler;
/// `n_questions` distinct keys are asked after the context.
inline auto retrieval_prompts(const text_source& src, std::size_t count,
                              std::size_t context_bytes, std::size_t n_questions,
                              std::uint64_t seed) -> std::vector<retrieval_prompt> {
  static constexpr std::string_view key_chars = "0123456789abcdef";
  static constexpr std::string_view val_chars = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::mt19937_64 rng(seed);
  auto pick = [&](std::string_view chars) {
    return chars[std::uniform_int_distribution<std::size_t>(0, chars.size() - 1)(rng)];
  };
  const auto filler = code_pieces(src, count, context_bytes, 4);
  std::vector<retrieval_prompt> out;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t n_keys = std::max<std::size_t>(n_questions, context_bytes * 45 / 100 / 17);
    std::vector<std::pair<std::string, std::string>> keys;
    std::set<std::string> seen;
    while (keys.size() < n_keys) {
      std::string k = "k_";
      std::string v;
      for (int c = 0; c < 4; ++c) {
        k += pick(key_chars);
        v += pick(val_chars);
      }
      if (seen.insert(k).second) {
        keys.emplace_back(k, v);
      }
    }
    retrieval_prompt p;
    p.context = "# lookup table\n";
    for (const auto& [k, v] : keys) {
      p.context += k + " = '" + v + "'\n";
    }
    if (p.context.size() + 2 < context_bytes && !filler.empty()) {
      std::string fill = filler[i % filler.size()].substr(0, context_bytes - p.context.size() - 2);
      const auto nl = fill.rfind('\n');
      fill = nl == std::string::npos ? std::string() : fill.substr(0, nl + 1);
      p.context += "\n" + fill + "\n";
    }
    std::vector<std::size_t> order(keys.size());
    for (std::size_t j = 0; j < order.size(); ++j) {
      order[j] = j;
    }
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t q = 0; q < n_questions; ++q) {
      const auto& [k, v] = keys[order[q]];
      p.questions.push_back({"print(" + k + ")  # -> '", v});
    }
    out.push_back(std::move(p));
  }
  return out;
}

} // namespace eval
