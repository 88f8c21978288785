// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Arrays from Python (numpy, torch, anything with DLPack) as kvsieve tensor_views, without a
/// copy for float32. Each check raises a Python exception naming the argument: TypeError for a
/// dtype other than float32/bfloat16 or a device other than the cache's (the CPU, or for the
/// CUDA cache of device_cache.hpp its CUDA device), ValueError for the wrong number of
/// dimensions or a layout that is not C-contiguous. Shapes against the cache's geometry are the
/// cache's own checks (kvsieve's messages).
/// bfloat16 arrays are widened into a float32 buffer at entry (and outputs narrowed at exit):
/// the host cache computes in float32, its pages may hold bfloat16.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <kvsieve/core/numeric.hpp>
#include <kvsieve/core/tensor.hpp>

namespace kvsieve::python {

namespace nb = nanobind;

using in_array = nb::ndarray<nb::ro>; // any dtype, device and layout: checked here
using out_array = nb::ndarray<>;

enum class array_dtype { float32, bfloat16 };

[[nodiscard]] inline auto dtype_name(array_dtype d) -> std::string_view {
  return d == array_dtype::float32 ? "float32" : "bfloat16";
}

/// Where an array must live: the CPU (device_id ignored) or CUDA device `device_id`.
struct array_place {
  std::int32_t device_type = nb::device::cpu::value;
  std::int32_t device_id = 0;
};

[[nodiscard]] inline auto place_name(std::int32_t device_type, std::int32_t device_id)
    -> std::string {
  if (device_type == nb::device::cpu::value) {
    return "cpu";
  }
  if (device_type == nb::device::cuda::value) {
    return fmt::format("cuda:{}", device_id);
  }
  return fmt::format("DLPack device type {} ({})", device_type, device_id);
}

/// The array's dtype after the device, dtype, rank and layout checks.
template <class Array>
[[nodiscard]] auto checked(std::string_view what, const Array& a, std::size_t rank,
                           array_place where = {}) -> array_dtype {
  const bool on_cpu = where.device_type == nb::device::cpu::value;
  if (static_cast<std::int32_t>(a.device_type()) != where.device_type ||
      (!on_cpu && static_cast<std::int32_t>(a.device_id()) != where.device_id)) {
    const auto here = place_name(static_cast<std::int32_t>(a.device_type()),
                                 static_cast<std::int32_t>(a.device_id()));
    const auto there = place_name(where.device_type, where.device_id);
    throw nb::type_error(
        (on_cpu ? fmt::format("{} is on {}, but this cache is on the CPU: move it with .cpu(), or "
                              "make the cache with device='cuda' (kvsieve.cuda_available())",
                              what, here)
                : fmt::format("{} is on {}, but this cache is on {}: move it with .to('{}')", what,
                              here, there, there))
            .c_str());
  }
  const auto dt = a.dtype();
  array_dtype kind{};
  if (dt == nb::dtype<float>()) {
    kind = array_dtype::float32;
  } else if (dt.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Bfloat) &&
             dt.bits == 16 && dt.lanes == 1) {
    kind = array_dtype::bfloat16;
  } else {
    throw nb::type_error(fmt::format("{} has dtype code {} with {} bits; expected float32 or "
                                     "bfloat16 (torch.bfloat16)",
                                     what, dt.code, dt.bits)
                             .c_str());
  }
  if (a.ndim() != rank) {
    throw nb::value_error(fmt::format("{} has {} dimensions, expected {}", what, a.ndim(), rank)
                              .c_str());
  }
  std::int64_t expected = 1;
  for (std::size_t i = rank; i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expected) {
      throw nb::value_error(fmt::format("{} is not C-contiguous (a strided view); pass "
                                        "numpy.ascontiguousarray(x) or x.contiguous()",
                                        what)
                                .c_str());
    }
    expected *= static_cast<std::int64_t>(a.shape(i));
  }
  return kind;
}

template <class Array, std::size_t Rank>
[[nodiscard]] auto extents_of(const Array& a) -> std::array<std::size_t, Rank> {
  std::array<std::size_t, Rank> e{};
  for (std::size_t i = 0; i < Rank; ++i) {
    e[i] = a.shape(i);
  }
  return e;
}

/// A float32 view of an input: the array itself, or its bfloat16 elements widened into `buffer`.
template <std::size_t Rank>
[[nodiscard]] auto float_view(const in_array& a, array_dtype d, std::vector<float>& buffer)
    -> tensor_view<const float, Rank> {
  const auto e = extents_of<in_array, Rank>(a);
  if (d == array_dtype::float32) {
    return {static_cast<const float*>(a.data()), e};
  }
  const auto* src = static_cast<const bfloat16*>(a.data());
  buffer.resize(a.size());
  for (std::size_t i = 0; i < buffer.size(); ++i) {
    buffer[i] = src[i].to_float();
  }
  return {buffer.data(), e};
}

/// A float32 view of an output: the array itself, or `buffer` to be narrowed by narrow_into.
template <std::size_t Rank>
[[nodiscard]] auto float_out(const out_array& a, array_dtype d, std::vector<float>& buffer)
    -> tensor_view<float, Rank> {
  const auto e = extents_of<out_array, Rank>(a);
  if (d == array_dtype::float32) {
    return {static_cast<float*>(a.data()), e};
  }
  buffer.resize(a.size());
  return {buffer.data(), e};
}

/// Writes `buffer` (float_out's) into a bfloat16 output; nothing for float32.
inline void narrow_into(const out_array& a, array_dtype d, const std::vector<float>& buffer) {
  if (d == array_dtype::float32) {
    return;
  }
  auto* dst = static_cast<bfloat16*>(a.data());
  for (std::size_t i = 0; i < a.size(); ++i) {
    dst[i] = bfloat16::from_float(buffer[i]);
  }
}

} // namespace kvsieve::python
