// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// kvsieve::error: the one exception type the library throws for bad input or bad state.
/// Every message names the argument or object at fault and where the check was written.

#include <kvsieve/core/config.hpp> // first: rejects unsupported compilers before <source_location>

#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace kvsieve {

/// What went wrong, for callers that branch on it; the message says the rest.
enum class errc {
  invalid_argument, ///< a value outside its documented range (T, ratios, ids)
  shape_mismatch,   ///< tensor extents disagree with the cache or store geometry
  out_of_range,     ///< a sequence, layer, head or slot index past its bound
  bad_state,        ///< an operation in the wrong order (decode before prefill, ...)
  out_of_memory,    ///< the page pool is exhausted; the store is left unchanged
  io,               ///< a file could not be read or parsed
  device,           ///< the CUDA runtime reported an error other than out-of-memory
};

[[nodiscard]] constexpr auto to_string(errc code) noexcept -> std::string_view {
  switch (code) {
  case errc::invalid_argument:
    return "invalid argument";
  case errc::shape_mismatch:
    return "shape mismatch";
  case errc::out_of_range:
    return "out of range";
  case errc::bad_state:
    return "bad state";
  case errc::out_of_memory:
    return "out of memory";
  case errc::io:
    return "i/o error";
  case errc::device:
    return "device error";
  }
  return "unknown";
}

namespace detail {
/// The part of a source path worth showing a user: from the last `include/` on (the header as
/// it is included, e.g. `kvsieve/cache/adaptive_cache.hpp`), else the last two components.
/// A build machine's absolute path says nothing to whoever reads the message.
[[nodiscard]] constexpr auto short_source_path(std::string_view path) noexcept -> std::string_view {
  if (const auto inc = path.rfind("include/"); inc != std::string_view::npos) {
    return path.substr(inc + 8);
  }
  const auto last = path.rfind('/');
  if (last == std::string_view::npos || last == 0) {
    return path;
  }
  const auto before = path.rfind('/', last - 1);
  return before == std::string_view::npos ? path : path.substr(before + 1);
}
} // namespace detail

class error : public std::runtime_error {
public:
  error(errc code, const std::string& what, std::source_location where)
      : std::runtime_error(fmt::format("kvsieve: {}: {} [{}:{}]", to_string(code), what,
                                       detail::short_source_path(where.file_name()),
                                       where.line())),
        code_(code) {}

  [[nodiscard]] auto code() const noexcept -> errc { return code_; }

private:
  errc code_;
};

/// Throws kvsieve::error with the caller's location.
[[noreturn]] inline void raise(errc code, const std::string& what,
                               std::source_location where = std::source_location::current()) {
  throw error(code, what, where);
}

/// Throws unless `ok`. The message is built only on failure: pass a callable for costly text.
template <class Message>
inline void expects(bool ok, errc code, Message&& message,
                    std::source_location where = std::source_location::current()) {
  if (ok) [[likely]] {
    return;
  }
  if constexpr (std::is_invocable_v<Message>) {
    raise(code, std::string(message()), where);
  } else {
    raise(code, std::string(message), where);
  }
}

} // namespace kvsieve
