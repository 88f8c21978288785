// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// expect_error(f, code, fragment): f throws a kvsieve::error with that code whose message
/// contains `fragment` (a test fails, naming the fragment, when nothing or something else is
/// thrown). Returns the message, for further checks.

#include <string>

#include <common/catch.hpp>

#include <kvsieve/core/error.hpp>

namespace kvsieve::testing {

template <class F>
auto expect_error(F&& f, errc code, const std::string& fragment) -> std::string {
  try {
    f();
  } catch (const kvsieve::error& e) {
    INFO(e.what());
    CHECK(e.code() == code);
    CHECK(std::string(e.what()).find(fragment) != std::string::npos);
    return e.what();
  }
  FAIL("no kvsieve::error thrown; expected one mentioning '" << fragment << "'");
  return {};
}

} // namespace kvsieve::testing
