// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve-generate-cuda: generate.cpp compiled by nvcc, whose backend table then puts the model
// (llama/cuda_model.cuh) and the cache (kvsieve::cuda::adaptive_cache) on the GPU.
#include "generate.cpp"
