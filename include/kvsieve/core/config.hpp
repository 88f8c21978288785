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

// Compilers kvsieve is built and tested with: GCC >= 12, clang >= 16 (libstdc++ 12's
// <source_location> needs clang's __builtin_source_location, and C++20 lambdas capturing
// structured bindings need clang 16). Older ones fail here with a message instead of deep inside
// a standard header.
#if defined(__clang__) && !defined(__CUDA__) && __clang_major__ < 16
#error "kvsieve needs clang 16 or newer (or GCC 12 or newer); see README.md, Compilers"
#elif defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 12
#error "kvsieve needs GCC 12 or newer (or clang 16 or newer); see README.md, Compilers"
#endif // compiler version

#define KVSIEVE_VERSION_MAJOR 0
#define KVSIEVE_VERSION_MINOR 1
#define KVSIEVE_VERSION_PATCH 0
