// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// One token's matrix-vector product, for the decoder's decode steps (cpu_backend.hpp).

#include <cstddef>

namespace llama::ops {

/// y[o] = sum_i w[o * n_in + i] * x[i] for o < n_out: w [n_out, n_in] row-major, x [n_in],
/// y [n_out]. Each y[o] is one row's dot product, so a split of the rows changes no result.
/// SIMD for the CPU at hand (Highway, runtime dispatch); compiled in matvec.cpp (kvsieve_llama).
void matvec(const float* w, std::size_t n_out, std::size_t n_in, const float* x, float* y);

} // namespace llama::ops
