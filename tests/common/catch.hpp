// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Catch2 v2 or v3, whichever the build found: tests include this and use only macros both have.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
using Catch::Approx; // v2 has Approx in the global namespace
#else
#include <catch2/catch.hpp>
#endif // __has_include(<catch2/catch_all.hpp>)
