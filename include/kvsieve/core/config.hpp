// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The only home of preprocessor conditionals in kvsieve: host/device qualifiers and the CUDA
/// switch. Everything else selects backends through types (core/space.hpp).

#if defined(__CUDACC__)
#define KVSIEVE_HOST_DEVICE __host__ __device__
#define KVSIEVE_HAS_CUDA 1
#else
#define KVSIEVE_HOST_DEVICE
#define KVSIEVE_HAS_CUDA 0
#endif // __CUDACC__

#define KVSIEVE_VERSION_MAJOR 0
#define KVSIEVE_VERSION_MINOR 1
#define KVSIEVE_VERSION_PATCH 0
