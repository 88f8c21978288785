// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The machine's own single-core read bandwidth, measured in the same run as the kernels it
/// judges: a plain SIMD sum over a buffer far larger than the caches (read_bandwidth.cpp, its own
/// translation unit with its own Highway dispatch, since kvsieve's attention headers take the
/// one hwy/foreach_target.h of theirs).

#include <cstddef>

namespace kvsieve::bench {

/// The sum of x[0, n), read with the widest SIMD the CPU has and four independent accumulators:
/// nothing but loads and adds, so its speed is the read bandwidth.
[[nodiscard]] auto simd_sum(const float* x, std::size_t n) -> float;

/// Median GB/s (1e9 bytes/s) of `passes` simd_sum passes over a fresh buffer of `bytes`, on the
/// calling thread, measured once per process and then remembered (256 MB, 7 passes).
[[nodiscard]] auto single_core_read_gbps() -> double;

} // namespace kvsieve::bench
