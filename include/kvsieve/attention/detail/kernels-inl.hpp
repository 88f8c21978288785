// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
//
// Host attention kernels, written once with Google Highway and compiled once per SIMD target:
// attention/detail/kernels.hpp includes this file through hwy/foreach_target.h, which re-includes
// it for every target (AVX-512, AVX2, SSE4, ... ) in its own namespace. Hence no #pragma once:
// the guard below is Highway's per-target toggle (docs/design.md, "SIMD"). Included alone it
// compiles the baseline target only, which is what the header self-containment test checks.
// Not API: call attend_paged / causal_attention.

#if defined(KVSIEVE_ATTENTION_DETAIL_KERNELS_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVSIEVE_ATTENTION_DETAIL_KERNELS_INL_HPP_
#undef KVSIEVE_ATTENTION_DETAIL_KERNELS_INL_HPP_
#else
#define KVSIEVE_ATTENTION_DETAIL_KERNELS_INL_HPP_
#endif // KVSIEVE_ATTENTION_DETAIL_KERNELS_INL_HPP_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <hwy/cache_control.h>
#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <kvsieve/attention/detail/kernel_args.hpp>
#include <kvsieve/core/numeric.hpp>

HWY_BEFORE_NAMESPACE();
namespace kvsieve::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using df_t = hn::ScalableTag<float>;
using vf_t = hn::Vec<df_t>;

// IEEE half bits (zero-extended to 32) to float, exactly, with integer operations: Highway's
// emulated conversion (targets without F16C) maps inf/NaN to finite values.
template <class VU>
HWY_INLINE auto half_bits_to_float(df_t df, VU h) -> vf_t {
  const hn::RebindToUnsigned<df_t> du;
  const auto exp_mask = hn::Set(du, 0x7c00U << 13U);
  const auto em = hn::ShiftLeft<13>(hn::And(h, hn::Set(du, 0x7fffU)));
  const auto exp = hn::And(em, exp_mask);
  auto o = hn::Add(em, hn::Set(du, 112U << 23U)); // rebias 15 -> 127
  o = hn::IfThenElse(hn::Eq(exp, exp_mask), hn::Add(o, hn::Set(du, 112U << 23U)), o); // inf, NaN
  // Zero and subnormals: (1 + m / 1024) 2^-14 - 2^-14 = m 2^-24, an exact subtraction.
  const auto sub = hn::BitCast(du, hn::Sub(hn::BitCast(df, hn::Add(o, hn::Set(du, 1U << 23U))),
                                           hn::BitCast(df, hn::Set(du, 113U << 23U))));
  o = hn::IfThenElse(hn::Eq(exp, hn::Zero(du)), sub, o);
  return hn::BitCast(df, hn::Or(o, hn::ShiftLeft<16>(hn::And(h, hn::Set(du, 0x8000U)))));
}

// Lanes(df) consecutive elements of a stored row, as floats.
template <class T>
HWY_INLINE auto load_row(df_t df, const T* HWY_RESTRICT p) -> vf_t {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(df, p);
  } else {
    const hn::Rebind<std::uint16_t, df_t> d16;
    const hn::RebindToUnsigned<df_t> du;
    const auto* bits = reinterpret_cast<const std::uint16_t*>(p); // {uint16_t bits} structs
    if constexpr (std::is_same_v<T, bfloat16>) {
      return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, bits))));
    } else {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2 && !defined(HWY_DISABLE_F16C)
      (void)du;
      const hn::Rebind<hwy::float16_t, df_t> dh;
      return hn::PromoteTo(df, hn::BitCast(dh, hn::LoadU(d16, bits))); // F16C: exact
#else
      return half_bits_to_float(df, hn::PromoteTo(du, hn::LoadU(d16, bits)));
#endif // F16C
    }
  }
}

#if HWY_HAVE_SCALABLE || HWY_TARGET == HWY_SCALAR
// Sizeless vectors (SVE, RVV) cannot form arrays: one head at a time, two named accumulators.
// The scalar target (CPUs before SSSE3) takes this path too: GCC 12 misjudges the bounds of the
// one-lane vector arrays below (-Waggressive-loop-optimizations), and speed there is moot.
template <std::size_t kD, std::size_t kH, class T>
inline void dot_rows(const T* HWY_RESTRICT k, std::size_t rows, std::size_t k_stride,
                     std::size_t d_rt, const float* HWY_RESTRICT q, std::size_t q_stride,
                     float scale, float* HWY_RESTRICT logits, std::size_t l_stride) {
  const df_t df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t d = kD != 0 ? kD : d_rt;
  for (std::size_t h = 0; h < kH; ++h) {
    const float* HWY_RESTRICT qh = q + h * q_stride;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* HWY_RESTRICT kr = k + r * k_stride;
      auto a0 = hn::Zero(df);
      auto a1 = hn::Zero(df);
      std::size_t c = 0;
      for (; c + 2 * lanes <= d; c += 2 * lanes) {
        a0 = hn::MulAdd(hn::LoadU(df, qh + c), load_row(df, kr + c), a0);
        a1 = hn::MulAdd(hn::LoadU(df, qh + c + lanes), load_row(df, kr + c + lanes), a1);
      }
      float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, a1)));
      for (; c < d; ++c) {
        s += qh[c] * load_float(kr[c]);
      }
      logits[h * l_stride + r] = s * scale;
    }
  }
}

template <std::size_t kD, std::size_t kH, class T>
inline void weighted_sum_rows(const T* HWY_RESTRICT v, std::size_t rows, std::size_t v_stride,
                              std::size_t d_rt, const float* HWY_RESTRICT p, std::size_t p_stride,
                              float* HWY_RESTRICT out, std::size_t o_stride) {
  const df_t df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t d = kD != 0 ? kD : d_rt;
  const std::size_t full = d - d % lanes;
  for (std::size_t h = 0; h < kH; ++h) {
    float* HWY_RESTRICT oh = out + h * o_stride;
    for (std::size_t c = 0; c < full; c += lanes) {
      auto o = hn::LoadU(df, oh + c);
      for (std::size_t r = 0; r < rows; ++r) {
        o = hn::MulAdd(hn::Set(df, p[h * p_stride + r]), load_row(df, v + r * v_stride + c), o);
      }
      hn::StoreU(o, df, oh + c);
    }
    for (std::size_t c = full; c < d; ++c) {
      float o = oh[c];
      for (std::size_t r = 0; r < rows; ++r) {
        o += p[h * p_stride + r] * load_float(v[r * v_stride + c]);
      }
      oh[c] = o;
    }
  }
}
#else
// logits[h * l_stride + r] = scale * (q_h . k_r) for kH query heads and `rows` rows of K. Eight
// accumulators in all (8 / kH per head over interleaved column chunks) keep the FMA pipes busy,
// and each K chunk is converted once for all kH heads.
template <std::size_t kD, std::size_t kH, class T>
inline void dot_rows(const T* HWY_RESTRICT k, std::size_t rows, std::size_t k_stride,
                     std::size_t d_rt, const float* HWY_RESTRICT q, std::size_t q_stride,
                     float scale, float* HWY_RESTRICT logits, std::size_t l_stride) {
  constexpr std::size_t kA = 8 / kH;
  const df_t df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t d = kD != 0 ? kD : d_rt;
  const std::size_t full = d - d % lanes;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* HWY_RESTRICT kr = k + r * k_stride;
    vf_t acc[kH][kA];
    for (std::size_t h = 0; h < kH; ++h) {
      for (std::size_t a = 0; a < kA; ++a) {
        acc[h][a] = hn::Zero(df);
      }
    }
    std::size_t c = 0;
    for (; c + kA * lanes <= full; c += kA * lanes) {
      for (std::size_t a = 0; a < kA; ++a) {
        const vf_t kv = load_row(df, kr + c + a * lanes);
        for (std::size_t h = 0; h < kH; ++h) {
          acc[h][a] = hn::MulAdd(hn::LoadU(df, q + h * q_stride + c + a * lanes), kv, acc[h][a]);
        }
      }
    }
    for (; c < full; c += lanes) {
      const vf_t kv = load_row(df, kr + c);
      for (std::size_t h = 0; h < kH; ++h) {
        acc[h][0] = hn::MulAdd(hn::LoadU(df, q + h * q_stride + c), kv, acc[h][0]);
      }
    }
    for (std::size_t h = 0; h < kH; ++h) {
      for (std::size_t w = kA / 2; w > 0; w /= 2) { // pairwise: (a0 + a4) + (a2 + a6) + ...
        for (std::size_t a = 0; a < w; ++a) {
          acc[h][a] = hn::Add(acc[h][a], acc[h][a + w]);
        }
      }
      float s = hn::GetLane(hn::SumOfLanes(df, acc[h][0]));
      for (std::size_t cc = full; cc < d; ++cc) {
        s += q[h * q_stride + cc] * load_float(kr[cc]);
      }
      logits[h * l_stride + r] = s * scale;
    }
  }
}

// out_h[c0, c0 + kS lanes) += sum_r p[h * p_stride + r] v_r for kH heads, row by row: the
// kH x kS output vectors stay in registers for the whole block of rows.
template <std::size_t kS, std::size_t kH, class T>
HWY_INLINE void weighted_slab(df_t df, const T* HWY_RESTRICT v, std::size_t rows,
                              std::size_t v_stride, const float* HWY_RESTRICT p,
                              std::size_t p_stride, float* HWY_RESTRICT out, std::size_t o_stride,
                              std::size_t c0) {
  const std::size_t lanes = hn::Lanes(df);
  vf_t o[kH][kS];
  for (std::size_t h = 0; h < kH; ++h) {
    for (std::size_t s = 0; s < kS; ++s) {
      o[h][s] = hn::LoadU(df, out + h * o_stride + c0 + s * lanes);
    }
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const T* HWY_RESTRICT vr = v + r * v_stride + c0;
    vf_t x[kS];
    for (std::size_t s = 0; s < kS; ++s) {
      x[s] = load_row(df, vr + s * lanes);
    }
    for (std::size_t h = 0; h < kH; ++h) {
      const vf_t w = hn::Set(df, p[h * p_stride + r]);
      for (std::size_t s = 0; s < kS; ++s) {
        o[h][s] = hn::MulAdd(w, x[s], o[h][s]);
      }
    }
  }
  for (std::size_t h = 0; h < kH; ++h) {
    for (std::size_t s = 0; s < kS; ++s) {
      hn::StoreU(o[h][s], df, out + h * o_stride + c0 + s * lanes);
    }
  }
}

// out_h += sum_r p[h * p_stride + r] v_r over `rows` rows of V, for kH query heads. Each output
// element is summed over rows in order, as the scalar loop did.
template <std::size_t kD, std::size_t kH, class T>
inline void weighted_sum_rows(const T* HWY_RESTRICT v, std::size_t rows, std::size_t v_stride,
                              std::size_t d_rt, const float* HWY_RESTRICT p, std::size_t p_stride,
                              float* HWY_RESTRICT out, std::size_t o_stride) {
  constexpr std::size_t kS = 8 / kH;
  const df_t df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t d = kD != 0 ? kD : d_rt;
  const std::size_t full = d - d % lanes;
  std::size_t c = 0;
  for (; c + kS * lanes <= full; c += kS * lanes) {
    weighted_slab<kS, kH>(df, v, rows, v_stride, p, p_stride, out, o_stride, c);
  }
  for (; c < full; c += lanes) {
    weighted_slab<1, kH>(df, v, rows, v_stride, p, p_stride, out, o_stride, c);
  }
  for (; c < d; ++c) {
    for (std::size_t h = 0; h < kH; ++h) {
      float o = out[h * o_stride + c];
      for (std::size_t r = 0; r < rows; ++r) {
        o += p[h * p_stride + r] * load_float(v[r * v_stride + c]);
      }
      out[h * o_stride + c] = o;
    }
  }
}
#endif // HWY_HAVE_SCALABLE || HWY_TARGET == HWY_SCALAR

// Calls fn(std::integral_constant<size_t, kH>{}, h0) over blocks of kMax (8 or 4), then 4, 2
// and 1 query heads covering [0, group).
template <std::size_t kMax, class Fn>
HWY_INLINE void for_head_blocks(std::size_t group, Fn&& fn) {
  std::size_t h0 = 0;
  for (; h0 + kMax <= group; h0 += kMax) {
    fn(std::integral_constant<std::size_t, kMax>{}, h0);
  }
  if (kMax > 4 && h0 + 4 <= group) {
    fn(std::integral_constant<std::size_t, 4>{}, h0);
    h0 += 4;
  }
  if (h0 + 2 <= group) {
    fn(std::integral_constant<std::size_t, 2>{}, h0);
    h0 += 2;
  }
  if (h0 < group) {
    fn(std::integral_constant<std::size_t, 1>{}, h0);
  }
}

// max over l[0, n), n > 0.
inline auto max_of(const float* HWY_RESTRICT l, std::size_t n) -> float {
  const df_t df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t full = n - n % lanes;
  auto vmax = hn::Set(df, -std::numeric_limits<float>::infinity());
  for (std::size_t j = 0; j < full; j += lanes) {
    vmax = hn::Max(vmax, hn::LoadU(df, l + j));
  }
  float m = hn::GetLane(hn::MaxOfLanes(df, vmax));
  for (std::size_t j = full; j < n; ++j) {
    m = l[j] > m ? l[j] : m;
  }
  return m;
}

// In place: l[j] = exp(l[j] - m), j < n; returns their sum (two vector accumulators).
// Exponentials come from Highway's Exp for every element, the tail included (padded with -inf,
// whose exponential is 0), so equal logits get equal probabilities wherever they sit.
inline auto exp_sum(float* HWY_RESTRICT l, std::size_t n, float m) -> float {
  const df_t df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t full = n - n % lanes;
  const auto vm = hn::Set(df, m);
  auto s0 = hn::Zero(df);
  auto s1 = hn::Zero(df);
  std::size_t j = 0;
  for (; j + 2 * lanes <= full; j += 2 * lanes) {
    const auto e0 = hn::Exp(df, hn::Sub(hn::LoadU(df, l + j), vm));
    const auto e1 = hn::Exp(df, hn::Sub(hn::LoadU(df, l + j + lanes), vm));
    hn::StoreU(e0, df, l + j);
    hn::StoreU(e1, df, l + j + lanes);
    s0 = hn::Add(s0, e0);
    s1 = hn::Add(s1, e1);
  }
  for (; j < full; j += lanes) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, l + j), vm));
    hn::StoreU(e, df, l + j);
    s0 = hn::Add(s0, e);
  }
  if (full < n) {
    HWY_ALIGN float tail[hn::MaxLanes(df_t())];
    for (std::size_t t = 0; t < lanes; ++t) {
      tail[t] = full + t < n ? l[full + t] : -std::numeric_limits<float>::infinity();
    }
    const auto e = hn::Exp(df, hn::Sub(hn::Load(df, tail), vm));
    hn::Store(e, df, tail);
    for (std::size_t t = 0; full + t < n; ++t) {
      l[full + t] = tail[t];
    }
    s1 = hn::Add(s1, e);
  }
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
}

// In place: x[j] *= f, j < n.
inline void scale_by(float* HWY_RESTRICT x, std::size_t n, float f) {
  const df_t df;
  const std::size_t lanes = hn::Lanes(df);
  const auto vf = hn::Set(df, f);
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes) {
    hn::StoreU(hn::Mul(hn::LoadU(df, x + j), vf), df, x + j);
  }
  for (; j < n; ++j) {
    x[j] *= f;
  }
}

// In place: l[j] = exp(l[j] - max l) / sum, j < n (n > 0).
inline void softmax(float* HWY_RESTRICT l, std::size_t n) {
  const float m = max_of(l, n);
  scale_by(l, n, 1.0F / exp_sum(l, n, m));
}

// prob[j] = mean or max over the group of probs[h * n + j].
inline void combine_group(const float* HWY_RESTRICT probs, std::size_t n, std::size_t group,
                          bool reduce_max, float* HWY_RESTRICT prob) {
  const df_t df;
  const std::size_t lanes = hn::Lanes(df);
  const std::size_t full = n - n % lanes;
  const auto vg = hn::Set(df, static_cast<float>(group));
  std::size_t j = 0;
  for (; j < full; j += lanes) {
    auto agg = hn::Zero(df);
    for (std::size_t h = 0; h < group; ++h) {
      const auto x = hn::LoadU(df, probs + h * n + j);
      agg = reduce_max ? hn::Max(agg, x) : hn::Add(agg, x);
    }
    hn::StoreU(reduce_max ? agg : hn::Div(agg, vg), df, prob + j);
  }
  for (; j < n; ++j) {
    float agg = 0.0F;
    for (std::size_t h = 0; h < group; ++h) {
      const float x = probs[h * n + j];
      agg = reduce_max ? (x > agg ? x : agg) : agg + x;
    }
    prob[j] = reduce_max ? agg : agg / static_cast<float>(group);
  }
}

// Asks for `bytes` at p in cache ahead of use, one request per 64-byte line. The hardware
// prefetchers stop at every page (a few KB, not adjacent to the head's next page) and lose the
// V rows, which the kernel walks slab by slab: a page two ahead is fetched while this one is
// computed.
HWY_INLINE void prefetch_bytes(const void* p, std::size_t bytes) {
  const auto* b = static_cast<const char*>(p);
  for (std::size_t o = 0; o < bytes; o += 64) {
    hwy::Prefetch(b + o);
  }
}

// Decode attention over the pages of one KV head in one sweep, page by page (K rows, then the V
// rows beside them in the same page), with the softmax kept online (running max and sum per
// query head, the output rescaled when the max grows; FlashAttention's recurrence). Each page's
// exponentials are kept, relative to the max at that page, and turned into probabilities at the
// end with one factor per page and head. K and V are each read once, in memory order.
template <std::size_t kD, class T>
inline void decode_impl(const decode_args& a) {
  const std::size_t d = a.head_dim;
  const std::size_t n = a.n;
  const std::size_t g = a.group;
  float* HWY_RESTRICT e = a.probs;              // [g, n]: logits, then exponentials
  float* HWY_RESTRICT run_max = a.state;        // [g]
  float* HWY_RESTRICT run_sum = a.state + g;    // [g]
  float* HWY_RESTRICT page_max = a.state + 2 * g; // [n_pages, g]: the max each page used
  for (std::size_t h = 0; h < g; ++h) {
    run_max[h] = -std::numeric_limits<float>::infinity();
    run_sum[h] = 0.0F;
  }
  for (std::size_t c = 0; c < g * d; ++c) {
    a.out[c] = 0.0F;
  }
  constexpr std::size_t ahead = 2; // pages; measured on a 2-core EPYC VM (docs/performance.md)
  std::size_t first = 0;
  for (std::size_t pg = 0; pg < a.n_pages; ++pg) {
    const auto& page = a.pages[pg];
    if (ahead > 0 && pg + ahead < a.n_pages) {
      const auto& next = a.pages[pg + ahead];
      prefetch_bytes(next.keys, next.count * d * sizeof(T));
      prefetch_bytes(next.values, next.count * d * sizeof(T));
    }
    const T* k = static_cast<const T*>(page.keys);
    for_head_blocks<8>(g, [&](auto heads, std::size_t h0) { // one K conversion for 8 heads
      dot_rows<kD, decltype(heads)::value>(k, page.count, d, d, a.q + h0 * d, d, a.scale,
                                           e + h0 * n + first, n);
    });
    for (std::size_t h = 0; h < g; ++h) {
      float* HWY_RESTRICT eh = e + h * n + first;
      const float m = max_of(eh, page.count);
      if (m > run_max[h]) {
        if (run_sum[h] > 0.0F) { // earlier pages were summed against a smaller max
          const float alpha = std::exp(run_max[h] - m);
          run_sum[h] *= alpha;
          scale_by(a.out + h * d, d, alpha);
        }
        run_max[h] = m;
      }
      run_sum[h] += exp_sum(eh, page.count, run_max[h]);
      page_max[pg * g + h] = run_max[h];
    }
    const T* v = static_cast<const T*>(page.values);
    // Blocks of at most 4: with 8 heads only one column chunk would stay in registers, and each
    // multiply-add would need its own broadcast of a probability.
    for_head_blocks<4>(g, [&](auto heads, std::size_t h0) {
      weighted_sum_rows<kD, decltype(heads)::value>(v, page.count, d, d, e + h0 * n + first, n,
                                                    a.out + h0 * d, d);
    });
    first += page.count;
  }
  for (std::size_t h = 0; h < g; ++h) {
    const float inv = 1.0F / run_sum[h];
    scale_by(a.out + h * d, d, inv);
    first = 0;
    for (std::size_t pg = 0; pg < a.n_pages; ++pg) {
      const std::size_t count = a.pages[pg].count;
      scale_by(e + h * n + first, count, std::exp(page_max[pg * g + h] - run_max[h]) * inv);
      first += count;
    }
  }
  combine_group(e, n, g, a.reduce_max, a.prob);
}

template <class T>
inline void decode_any(const decode_args& a) {
  switch (a.head_dim) { // the common head sizes get loops of known trip count
  case 64:
    decode_impl<64, T>(a);
    break;
  case 128:
    decode_impl<128, T>(a);
    break;
  default:
    decode_impl<0, T>(a);
  }
}

template <std::size_t kD>
inline void prefill_row_impl(const prefill_row_args& a) {
  dot_rows<kD, 1>(a.k, a.count, a.k_stride, a.head_dim, a.q, 0, a.scale, a.p, 0);
  softmax(a.p, a.count);
  for (std::size_t c = 0; c < a.head_dim; ++c) {
    a.out[c] = 0.0F;
  }
  weighted_sum_rows<kD, 1>(a.v, a.count, a.v_stride, a.head_dim, a.p, 0, a.out, 0);
}

// dst[j] += src[j] in double, j < n: the profiler's column sums (profile/attention_stats.hpp).
inline void add_to_f64(double* HWY_RESTRICT dst, const float* HWY_RESTRICT src, std::size_t n) {
  std::size_t j = 0;
#if HWY_HAVE_FLOAT64
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh; // as many floats as dd has doubles
  const std::size_t lanes = hn::Lanes(dd);
  for (; j + 2 * lanes <= n; j += 2 * lanes) {
    const auto a = hn::Add(hn::LoadU(dd, dst + j), hn::PromoteTo(dd, hn::LoadU(dh, src + j)));
    const auto b = hn::Add(hn::LoadU(dd, dst + j + lanes),
                           hn::PromoteTo(dd, hn::LoadU(dh, src + j + lanes)));
    hn::StoreU(a, dd, dst + j);
    hn::StoreU(b, dd, dst + j + lanes);
  }
#endif // HWY_HAVE_FLOAT64
  for (; j < n; ++j) {
    dst[j] += static_cast<double>(src[j]);
  }
}

// The entry points, one per element type: plain functions so that kernels.hpp can take their
// addresses for the dispatch tables.
inline void decode_f32(const decode_args& a) { decode_any<float>(a); }
inline void decode_bf16(const decode_args& a) { decode_any<bfloat16>(a); }
inline void decode_f16(const decode_args& a) { decode_any<half>(a); }

inline void prefill_row(const prefill_row_args& a) {
  switch (a.head_dim) {
  case 64:
    prefill_row_impl<64>(a);
    break;
  case 128:
    prefill_row_impl<128>(a);
    break;
  default:
    prefill_row_impl<0>(a);
  }
}

} // namespace kvsieve::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif // per-target include guard
