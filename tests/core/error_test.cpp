// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve::error messages: the code, the text, and a short source location (never a build
// machine's absolute path).
#include <string>

#include <common/catch.hpp>

#include <kvsieve/core/error.hpp>

TEST_CASE("short_source_path keeps the include-relative header path", "[core][error]") {
  using kvsieve::detail::short_source_path;
  CHECK(short_source_path("/home/ci/work/kvsieve/include/kvsieve/cache/adaptive_cache.hpp") ==
        "kvsieve/cache/adaptive_cache.hpp");
  CHECK(short_source_path("/usr/local/include/kvsieve/core/error.hpp") == "kvsieve/core/error.hpp");
  CHECK(short_source_path("/build/src/examples/llama/config.hpp") == "llama/config.hpp");
  CHECK(short_source_path("relative/dir/file.cpp") == "dir/file.cpp");
  CHECK(short_source_path("file.cpp") == "file.cpp");
  CHECK(short_source_path("/file.cpp") == "/file.cpp");
  CHECK(short_source_path("") == "");
}

TEST_CASE("an error message names the code and the text, and ends in a short location",
          "[core][error]") {
  try {
    kvsieve::expects(false, kvsieve::errc::invalid_argument, "T must lie in (0, 1]");
    FAIL("expects(false, ...) did not throw");
  } catch (const kvsieve::error& e) {
    const std::string what = e.what();
    CHECK(e.code() == kvsieve::errc::invalid_argument);
    CHECK(what.rfind("kvsieve: invalid argument: T must lie in (0, 1] [", 0) == 0);
    // This file, as the caller: its last two path components, never the absolute path.
    CHECK(what.find("[core/error_test.cpp:") != std::string::npos);
    CHECK(what.find("/tests/core/") == std::string::npos);
  }
}
