// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Reading JSON from an untrusted source for profile/profile_file.hpp: the whole stream up to a
/// size cap, a SAX pass (nesting depth, repeated keys, syntax errors as text) before the DOM is
/// built, and typed field readers whose errors name the field. Every failure is errc::io with
/// the caller's context as the message's start. Not API.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <limits>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>

namespace kvsieve::detail::profile_file {

using json = nlohmann::json;

inline constexpr int max_depth = 16;                // the format nests 3 levels
inline constexpr std::size_t max_bytes = 64U << 20; // 64 MiB: ~300k heads

/// `s` as a JSON string literal for a message: at most about 48 characters, never raw bytes.
[[nodiscard]] inline auto shown(std::string_view s) -> std::string {
  constexpr std::size_t limit = 48;
  std::string cut(s.substr(0, limit));
  auto out = json(cut).dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > limit ? out + "..." : out;
}

[[noreturn]] inline void fail(const std::string& what) { raise(errc::io, what); }

/// A SAX pass before the DOM is built: nesting depth, duplicate keys, and syntax errors as text
/// (nlohmann's DOM parser would throw; its message quotes the offending token, cut here).
class sax_check {
public:
  auto null() -> bool { return true; }
  auto boolean(bool) -> bool { return true; }
  auto number_integer(json::number_integer_t) -> bool { return true; }
  auto number_unsigned(json::number_unsigned_t) -> bool { return true; }
  auto number_float(json::number_float_t, const json::string_t&) -> bool { return true; }
  auto string(json::string_t&) -> bool { return true; }
  auto binary(json::binary_t&) -> bool { return true; }
  auto start_object(std::size_t) -> bool {
    keys_.emplace_back();
    return enter();
  }
  auto key(json::string_t& k) -> bool {
    if (!keys_.back().insert(k).second) {
      problem_ = fmt::format("duplicate key {}", shown(k));
      return false;
    }
    return true;
  }
  auto end_object() -> bool {
    keys_.pop_back();
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
    problem_ = fmt::format("not valid JSON: {}", std::string_view(e.what()).substr(0, 200));
    return false;
  }
  [[nodiscard]] auto problem() const -> const std::string& { return problem_; }

private:
  auto enter() -> bool {
    if (++depth_ > max_depth) {
      problem_ = fmt::format("JSON nested deeper than {} levels", max_depth);
      return false;
    }
    return true;
  }
  int depth_ = 0;
  std::vector<std::set<std::string, std::less<>>> keys_;
  std::string problem_;
};

/// The field `key` of object `obj`, which `where` names ("" for the root).
[[nodiscard]] inline auto field(const json& obj, std::string_view key, std::string_view where)
    -> const json& {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    fail(fmt::format("{}missing field '{}'", where, key));
  }
  return *it;
}

[[nodiscard]] inline auto integer(const json& obj, std::string_view key, std::string_view where,
                                  std::int64_t lo, std::int64_t hi) -> std::int64_t {
  const auto& v = field(obj, key, where);
  if (!v.is_number_integer()) {
    fail(fmt::format("{}field '{}' must be an integer, not {}{}", where, key,
                     v.is_number() ? "a fraction or exponent form " : "", v.type_name()));
  }
  if (v.is_number_unsigned() &&
      v.get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    fail(fmt::format("{}field '{}' {} is outside [{}, {}]", where, key, v.get<std::uint64_t>(), lo,
                     hi));
  }
  const auto x = v.get<std::int64_t>();
  if (x < lo || x > hi) {
    fail(fmt::format("{}field '{}' {} is outside [{}, {}]", where, key, x, lo, hi));
  }
  return x;
}

[[nodiscard]] inline auto int32(const json& obj, std::string_view key, std::string_view where,
                                std::int64_t lo) -> std::int32_t {
  return static_cast<std::int32_t>(
      integer(obj, key, where, lo, std::numeric_limits<std::int32_t>::max()));
}

[[nodiscard]] inline auto string(const json& obj, std::string_view key, std::string_view where)
    -> std::string {
  const auto& v = field(obj, key, where);
  if (!v.is_string()) {
    fail(fmt::format("{}field '{}' must be a string, not {}", where, key, v.type_name()));
  }
  return v.get<std::string>();
}

[[nodiscard]] inline auto parse(std::string_view text, std::string_view source) -> json {
  try {
    sax_check check;
    if (!json::sax_parse(text.begin(), text.end(), &check)) {
      fail(fmt::format("{}: {}", source, check.problem()));
    }
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) { // not expected after the SAX pass
    fail(fmt::format("{}: not valid JSON: {}", source, std::string_view(e.what()).substr(0, 200)));
  } catch (const std::bad_alloc&) {
    raise(errc::out_of_memory,
          fmt::format("{}: not enough memory to parse {} bytes", source, text.size()));
  }
}

/// Reads `is` whole, up to max_bytes.
[[nodiscard]] inline auto read_all(std::istream& is, std::string_view source) -> std::string {
  std::string text;
  std::vector<char> buffer(std::size_t{1} << 16);
  while (is.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) ||
         is.gcount() > 0) {
    text.append(buffer.data(), static_cast<std::size_t>(is.gcount()));
    if (text.size() > max_bytes) {
      fail(fmt::format("{}: more than the {} bytes this reader accepts", source, max_bytes));
    }
  }
  if (is.bad()) {
    fail(fmt::format("{}: the stream failed while reading", source));
  }
  return text;
}

} // namespace kvsieve::detail::profile_file
