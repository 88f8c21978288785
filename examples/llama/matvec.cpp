// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// llama::ops::matvec (declared in model.hpp): one token's matrix-vector products, written once
// with Google Highway and compiled for every SIMD target of this architecture, chosen at run
// time (no -march). Why not OpenBLAS's sgemv: one token streams every weight once, and a plain
// row-by-row dot product with independent accumulators streams them faster than OpenBLAS 0.3.21's
// sgemv on this machine (docs/performance.md, "Decoder"). Its own translation unit: Highway allows
// one hwy/foreach_target.h per TU, and kvsieve's attention headers use theirs.
#include <cstddef>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "llama/matvec.cpp"
#include <hwy/foreach_target.h> // re-includes this file once per target
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace llama::ops::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// y[o] = sum_i w[o, i] x[i]: four independent vector accumulators per row (the adds of one row
// are not one dependency chain), then the lanes, then the row's tail past the last full vector.
void matvec_rows(const float* HWY_RESTRICT w, std::size_t n_out, std::size_t n_in,
                 const float* HWY_RESTRICT x, float* HWY_RESTRICT y) {
  const hn::ScalableTag<float> d;
  const std::size_t n = hn::Lanes(d);
  for (std::size_t o = 0; o < n_out; ++o) {
    const float* HWY_RESTRICT r = w + o * n_in;
    auto a0 = hn::Zero(d);
    auto a1 = hn::Zero(d);
    auto a2 = hn::Zero(d);
    auto a3 = hn::Zero(d);
    std::size_t i = 0;
    for (; i + 4 * n <= n_in; i += 4 * n) {
      a0 = hn::MulAdd(hn::LoadU(d, r + i), hn::LoadU(d, x + i), a0);
      a1 = hn::MulAdd(hn::LoadU(d, r + i + n), hn::LoadU(d, x + i + n), a1);
      a2 = hn::MulAdd(hn::LoadU(d, r + i + 2 * n), hn::LoadU(d, x + i + 2 * n), a2);
      a3 = hn::MulAdd(hn::LoadU(d, r + i + 3 * n), hn::LoadU(d, x + i + 3 * n), a3);
    }
    for (; i + n <= n_in; i += n) {
      a0 = hn::MulAdd(hn::LoadU(d, r + i), hn::LoadU(d, x + i), a0);
    }
    float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
    for (; i < n_in; ++i) {
      s += r[i] * x[i];
    }
    y[o] = s;
  }
}

} // namespace llama::ops::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <llama/matvec.hpp>

namespace llama::ops {

HWY_EXPORT(matvec_rows);

void matvec(const float* w, std::size_t n_out, std::size_t n_in, const float* x, float* y) {
  HWY_DYNAMIC_DISPATCH(matvec_rows)(w, n_out, n_in, x, y);
}

} // namespace llama::ops
#endif // HWY_ONCE
