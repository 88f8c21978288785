// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Memory spaces (Kokkos-style tags). A store or kernel is selected by its Space parameter; the
/// host space is complete here, the CUDA specialisations live in the paired `.cuh` headers.

#include <concepts>
#include <string_view>

namespace kvsieve {

struct host_space {
  using memory_space = host_space;
  static constexpr std::string_view name = "host";
  static constexpr bool host_accessible = true;
  static constexpr bool device_accessible = false;
};

struct cuda_space {
  using memory_space = cuda_space;
  static constexpr std::string_view name = "cuda";
  static constexpr bool host_accessible = false;
  static constexpr bool device_accessible = true;
};

/// 1. `S::memory_space` names the space itself (a self alias, so wrappers can forward it);
/// 2. `S::name` for reports; 3. the two accessibility flags in CCCL's property vocabulary.
template <class S>
concept memory_space = std::same_as<typename S::memory_space, S> && requires {
  { S::name } -> std::convertible_to<std::string_view>;
  { S::host_accessible } -> std::convertible_to<bool>;
  { S::device_accessible } -> std::convertible_to<bool>;
};

static_assert(memory_space<host_space>);
static_assert(memory_space<cuda_space>);

} // namespace kvsieve
