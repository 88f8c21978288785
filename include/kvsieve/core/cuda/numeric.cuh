// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Device conversions for the storage types (float, kvsieve::bfloat16, kvsieve::half: the same
/// bits as __nv_bfloat16 / __half) and 16-byte vector loads of a row into floats. Arithmetic is
/// always float; these only convert, with the same rounding as the host types (nearest even).

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <kvsieve/core/numeric.hpp>

namespace kvsieve::cuda {

__device__ __forceinline__ auto to_float(float x) -> float { return x; }
__device__ __forceinline__ auto to_float(bfloat16 x) -> float {
  return __uint_as_float(static_cast<std::uint32_t>(x.bits) << 16U);
}
__device__ __forceinline__ auto to_float(half x) -> float {
  return __half2float(__ushort_as_half(x.bits));
}

template <class T>
__device__ __forceinline__ auto from_float(float x) -> T {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else if constexpr (std::is_same_v<T, bfloat16>) {
    return bfloat16{__bfloat16_as_ushort(__float2bfloat16_rn(x))};
  } else {
    return half{__half_as_ushort(__float2half_rn(x))};
  }
}

/// Elements of T in one 16-byte vector.
template <class T>
inline constexpr int vec_elems = 16 / static_cast<int>(sizeof(T));

/// Converts one 16-byte vector of T (as loaded) to vec_elems<T> floats.
template <class T>
__device__ __forceinline__ void unpack_vec(const uint4& raw, float* out) {
  if constexpr (std::is_same_v<T, float>) {
    out[0] = __uint_as_float(raw.x);
    out[1] = __uint_as_float(raw.y);
    out[2] = __uint_as_float(raw.z);
    out[3] = __uint_as_float(raw.w);
  } else {
    const std::uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const auto lo = static_cast<std::uint16_t>(words[i] & 0xffffU);
      const auto hi = static_cast<std::uint16_t>(words[i] >> 16U);
      out[2 * i] = to_float(T{lo});
      out[2 * i + 1] = to_float(T{hi});
    }
  }
}

/// Loads 16 bytes at p (16-byte aligned) as vec_elems<T> floats.
template <class T>
__device__ __forceinline__ void load_vec(const T* p, float* out) {
  unpack_vec<T>(__ldg(reinterpret_cast<const uint4*>(p)), out);
}

/// Stores vec_elems<T> floats at p (16-byte aligned) as one 16-byte vector.
template <class T>
__device__ __forceinline__ void store_vec(T* p, const float* in) {
  uint4 raw;
  if constexpr (std::is_same_v<T, float>) {
    raw = make_uint4(__float_as_uint(in[0]), __float_as_uint(in[1]), __float_as_uint(in[2]),
                     __float_as_uint(in[3]));
  } else {
    std::uint32_t words[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      words[i] = static_cast<std::uint32_t>(from_float<T>(in[2 * i]).bits) |
                 (static_cast<std::uint32_t>(from_float<T>(in[2 * i + 1]).bits) << 16U);
    }
    raw = make_uint4(words[0], words[1], words[2], words[3]);
  }
  *reinterpret_cast<uint4*>(p) = raw;
}

} // namespace kvsieve::cuda
