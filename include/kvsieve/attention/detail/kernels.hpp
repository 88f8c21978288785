// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The host attention kernels (attention/detail/kernels-inl.hpp), compiled for every SIMD target
/// Highway knows on this architecture and chosen at run time for the CPU at hand, so the
/// header-only library needs no -march flag (docs/design.md, "SIMD").
///  - decode_kernel<T>(args): decode attention of one KV head's group (attend_paged).
///  - prefill_row_kernel(args): one row of causal prompt attention (causal_attention).
///  - add_to_f64_kernel(dst, src, n): the profiler's column sums (head_stats).
/// Limits: this header is its translation unit's one user of hwy/foreach_target.h (Highway
/// allows one per TU); a TU that needs its own Highway dispatch must not include kvsieve's
/// attention headers. All TUs of a program must agree on the Highway target set (no per-TU
/// -march differences among TUs that include this header).

#include <cstddef>
#include <type_traits>

#include <kvsieve/attention/detail/kernel_args.hpp>
#include <kvsieve/core/numeric.hpp>

#ifdef HIGHWAY_HWY_FOREACH_TARGET_H_
#error "kvsieve: hwy/foreach_target.h was already included in this translation unit; Highway \
allows one per TU and kvsieve's attention kernels need it (see attention/detail/kernels.hpp)"
#endif // HIGHWAY_HWY_FOREACH_TARGET_H_

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kvsieve/attention/detail/kernels-inl.hpp"
#include <hwy/foreach_target.h> // every target but the baseline
#include <hwy/highway.h>

#include <kvsieve/attention/detail/kernels-inl.hpp> // the baseline (static) target

namespace kvsieve::detail {

using decode_fn = void (*)(const decode_args&);
using prefill_row_fn = void (*)(const prefill_row_args&);
using add_to_f64_fn = void (*)(double*, const float*, std::size_t);

// One entry per target, in Highway's dispatch order (HWY_EXPORT's layout); entry 0, where
// HWY_EXPORT puts its initialising trampoline, stays empty. Our own tables instead of
// HWY_EXPORT: its trampoline template does not compile under nvcc, which sees this header
// through the CUDA examples.
template <class Fn>
using dispatch_table = Fn[HWY_MAX_DYNAMIC_TARGETS + 2];

inline constexpr dispatch_table<decode_fn> decode_f32_table = {
    nullptr, HWY_CHOOSE_TARGET_LIST(decode_f32), HWY_CHOOSE_FALLBACK(decode_f32)};
inline constexpr dispatch_table<decode_fn> decode_bf16_table = {
    nullptr, HWY_CHOOSE_TARGET_LIST(decode_bf16), HWY_CHOOSE_FALLBACK(decode_bf16)};
inline constexpr dispatch_table<decode_fn> decode_f16_table = {
    nullptr, HWY_CHOOSE_TARGET_LIST(decode_f16), HWY_CHOOSE_FALLBACK(decode_f16)};
inline constexpr dispatch_table<prefill_row_fn> prefill_row_table = {
    nullptr, HWY_CHOOSE_TARGET_LIST(prefill_row), HWY_CHOOSE_FALLBACK(prefill_row)};
inline constexpr dispatch_table<add_to_f64_fn> add_to_f64_table = {
    nullptr, HWY_CHOOSE_TARGET_LIST(add_to_f64), HWY_CHOOSE_FALLBACK(add_to_f64)};

/// The best compiled entry the CPU supports. Highway's chosen target is process-wide (shared with
/// any other Highway user) and initialised on first use.
template <class Fn>
[[nodiscard]] inline auto pick(const dispatch_table<Fn>& table) -> Fn {
  auto& chosen = hwy::GetChosenTarget();
  if (!chosen.IsInitialized()) {
    chosen.Update(hwy::SupportedTargets());
  }
  // A target the CPU supports but this TU did not compile (chosen by another Highway user with a
  // wider target set) has no entry: take the next, lesser one; the last entry always exists.
  std::size_t i = chosen.GetIndex();
  while (table[i] == nullptr) {
    ++i;
  }
  return table[i];
}

/// Decode attention for storage element T; see decode_args.
template <storage_element T>
inline void decode_kernel(const decode_args& a) {
  if constexpr (std::is_same_v<T, float>) {
    pick(decode_f32_table)(a);
  } else if constexpr (std::is_same_v<T, bfloat16>) {
    pick(decode_bf16_table)(a);
  } else {
    pick(decode_f16_table)(a);
  }
}

/// One row of causal attention; see prefill_row_args.
inline void prefill_row_kernel(const prefill_row_args& a) { pick(prefill_row_table)(a); }

/// dst[j] += src[j], j < n, in double.
inline void add_to_f64_kernel(double* dst, const float* src, std::size_t n) {
  pick(add_to_f64_table)(dst, src, n);
}

} // namespace kvsieve::detail
