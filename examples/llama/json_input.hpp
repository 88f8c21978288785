// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// JSON from checkpoint files (config.json, safetensors headers, model.safetensors.index.json),
/// read as untrusted input: parse_json caps the nesting depth (nlohmann's parser is iterative,
/// but dump(), copies and comparisons recurse, so a value nested 100k deep would overflow the
/// stack later) and can reject duplicate keys; excerpt() renders a value from such a file for an
/// error message in a bounded number of characters (printable() does it for a string). Every
/// failure is a kvsieve::error whose message starts with the source.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>

#include <llama/printable.hpp>

namespace llama::detail {

/// Deeper than any checkpoint file needs (config.json nests 3-4 levels), shallow enough that
/// every recursive operation on a parsed value stays far from the stack's end.
inline constexpr int max_json_depth = 64;

/// What an object that repeats a key means. Python's json (so transformers) keeps the last
/// value; for tensor tables a repeated name is ambiguous and rejected.
enum class duplicate_keys : std::uint8_t { last_wins, reject };

namespace json_excerpt {
inline void append(std::string& out, const nlohmann::json& v, std::size_t limit, int depth) {
  if (out.size() > limit) {
    return;
  }
  const auto container = [&](char open, char close, auto&& each) {
    if (depth >= 3) {
      out += open;
      out += "...";
      out += close;
      return;
    }
    out += open;
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= limit; ++it) {
      out += first ? "" : ", ";
      first = false;
      each(it);
    }
    out += close;
  };
  // A string is cut before it is escaped, so a 140 KB value costs what `limit` allows.
  const auto string = [&](std::string_view s) {
    const auto cut = s.substr(0, limit - std::min(limit, out.size()) + 1);
    out += nlohmann::json(std::string(cut)).dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace);
  };
  switch (v.type()) {
  case nlohmann::json::value_t::object:
    container('{', '}', [&](const auto& it) {
      string(it.key());
      out += ": ";
      append(out, it.value(), limit, depth + 1);
    });
    break;
  case nlohmann::json::value_t::array:
    container('[', ']', [&](const auto& it) { append(out, *it, limit, depth + 1); });
    break;
  case nlohmann::json::value_t::string:
    string(v.get_ref<const std::string&>());
    break;
  case nlohmann::json::value_t::binary:
    out += "<binary>";
    break;
  default: // null, boolean, numbers: short
    out += v.dump();
  }
}
} // namespace json_excerpt

/// `v` as JSON text for an error message: at most about `max_chars` characters (cut at a UTF-8
/// boundary, then "..."), containers below the third level shown as [...] / {...}. O(max_chars),
/// whatever the size or depth of `v`.
[[nodiscard]] inline auto excerpt(const nlohmann::json& v, std::size_t max_chars = 80)
    -> std::string {
  std::string out;
  json_excerpt::append(out, v, max_chars, 0);
  if (out.size() <= max_chars) {
    return out;
  }
  std::size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0U) == 0x80U) {
    --cut;
  }
  out.resize(cut);
  out += "...";
  return out;
}

namespace json_check {

// A SAX pass over the text before the DOM is built: nesting depth and duplicate keys. Linear
// in the text (nlohmann's callback parser, the other way to see these events, rescans an
// array's elements at the end of each object in it: quadratic, minutes for a 600 KB config
// under ASan). It stops at the first problem and records it.
class handler {
public:
  using json = nlohmann::json;
  explicit handler(duplicate_keys duplicates) : duplicates_(duplicates) {}

  auto null() -> bool { return true; }
  auto boolean(bool) -> bool { return true; }
  auto number_integer(json::number_integer_t) -> bool { return true; }
  auto number_unsigned(json::number_unsigned_t) -> bool { return true; }
  auto number_float(json::number_float_t, const json::string_t&) -> bool { return true; }
  auto string(json::string_t&) -> bool { return true; }
  auto binary(json::binary_t&) -> bool { return true; }
  auto start_object(std::size_t) -> bool {
    if (duplicates_ == duplicate_keys::reject) {
      keys_.emplace_back();
    }
    return enter();
  }
  auto key(json::string_t& k) -> bool {
    if (duplicates_ == duplicate_keys::reject && !keys_.back().insert(k).second) {
      problem_ = fmt::format("duplicate key '{}'", printable(k));
      return false;
    }
    return true;
  }
  auto end_object() -> bool {
    if (duplicates_ == duplicate_keys::reject) {
      keys_.pop_back();
    }
    --depth_;
    return true;
  }
  auto start_array(std::size_t) -> bool { return enter(); }
  auto end_array() -> bool {
    --depth_;
    return true;
  }
  auto parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e)
      -> bool {
    // The parser quotes the token it stopped in, which can be the rest of the file.
    problem_ = fmt::format("not valid JSON: {}", printable(e.what(), 240));
    return false;
  }

  [[nodiscard]] auto problem() const -> const std::string& { return problem_; }

private:
  auto enter() -> bool {
    if (++depth_ > max_json_depth) {
      problem_ = fmt::format("JSON nested deeper than {} levels", max_json_depth);
      return false;
    }
    return true;
  }

  duplicate_keys duplicates_;
  int depth_ = 0;
  std::vector<std::set<std::string, std::less<>>> keys_; // of each open object, when rejecting
  std::string problem_;
};

} // namespace json_check

/// Parses `text` as one JSON value. Throws errc::io "<source>: not valid JSON: ..." for a syntax
/// error, "<source>: JSON nested deeper than 64 levels", "<source>: duplicate key '<k>'" (with
/// duplicate_keys::reject), and errc::out_of_memory when the parsed value does not fit.
/// Linear in the text: one SAX pass to check, then nlohmann's (iterative) DOM parser.
[[nodiscard]] inline auto parse_json(std::string_view text, std::string_view source,
                                     duplicate_keys duplicates = duplicate_keys::last_wins)
    -> nlohmann::json {
  try {
    json_check::handler check(duplicates);
    if (!nlohmann::json::sax_parse(text.begin(), text.end(), &check)) {
      kvsieve::raise(kvsieve::errc::io, fmt::format("{}: {}", source, check.problem()));
    }
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) { // not expected after the SAX pass
    kvsieve::raise(kvsieve::errc::io,
                   fmt::format("{}: not valid JSON: {}", source, printable(e.what(), 240)));
  } catch (const std::bad_alloc&) {
    kvsieve::raise(kvsieve::errc::out_of_memory,
                   fmt::format("{}: not enough memory to parse {} bytes of JSON", source,
                               text.size()));
  }
}

/// The JSON value in `file`, which must be a regular file of at most `max_bytes`.
/// Throws errc::io naming the file (cannot open, not a regular file, too large, or as
/// parse_json), errc::out_of_memory as parse_json.
[[nodiscard]] inline auto read_json_file(const std::filesystem::path& file,
                                         duplicate_keys duplicates, std::uintmax_t max_bytes)
    -> nlohmann::json {
  const auto where = file.string();
  // Checked before opening: opening a FIFO would wait for a writer.
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  kvsieve::expects(std::filesystem::exists(status), kvsieve::errc::io,
                   [&] { return fmt::format("{}: cannot open", where); });
  kvsieve::expects(std::filesystem::is_regular_file(status), kvsieve::errc::io,
                   [&] { return fmt::format("{}: not a regular file", where); });
  std::ifstream in(file, std::ios::binary);
  kvsieve::expects(in.is_open(), kvsieve::errc::io,
                   [&] { return fmt::format("{}: cannot open", where); });
  const auto size = std::filesystem::file_size(file, ec);
  kvsieve::expects(!ec && size <= max_bytes, kvsieve::errc::io, [&] {
    return ec ? fmt::format("{}: cannot read its size: {}", where, ec.message())
              : fmt::format("{}: {} bytes, more than the {} this reader accepts", where, size,
                            max_bytes);
  });
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  kvsieve::expects(in.gcount() == static_cast<std::streamsize>(text.size()), kvsieve::errc::io,
                   [&] { return fmt::format("{}: read failed", where); });
  return parse_json(text, where, duplicates);
}

} // namespace llama::detail
