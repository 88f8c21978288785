// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Runs a test body once per SIMD target that was compiled into the kernels and that this CPU
/// supports (AVX2, SSE4, SSSE3, scalar on an AVX2 machine), by narrowing Highway's process-wide
/// target choice, so every compiled path is checked and not only the best one.

#include <cstdint>
#include <string>

#include <common/catch.hpp>

#include <kvsieve/attention/detail/kernels.hpp>

namespace kvsieve::testing {

template <class Body>
void for_each_simd_target(Body&& body) {
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    INFO("SIMD target " << hwy::TargetName(target));
    body();
  }
  hwy::SetSupportedTargetsForTest(0); // back to what the CPU supports
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

} // namespace kvsieve::testing
