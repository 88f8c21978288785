// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The last-block election of a reduction split over blocks: each of `arrivals` blocks calls
/// last_to_arrive(counter, arrivals) once, with all of its threads, after writing its partial
/// results. It returns true, in every thread, in the one block that arrived last; that block may
/// then read the others' partials, through __ldcg (another SM's L1 is not coherent with its own).
/// The last block also sets *counter back to 0, so the counter is ready for the next launch or
/// graph replay without a memset. (CUDA Programming Guide, "memory fence functions".)

#include <cuda_runtime.h>

namespace kvsieve::cuda {

__device__ inline auto last_to_arrive(int* counter, int arrivals) -> bool {
  __shared__ int last;
  __threadfence(); // this block's partials are visible before its count is
  __syncthreads();
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) {
    last = atomicAdd(counter, 1) == arrivals - 1 ? 1 : 0;
    if (last != 0) {
      *counter = 0; // every block has counted: nobody reads it again in this launch
    }
  }
  __syncthreads();
  return last != 0;
}

} // namespace kvsieve::cuda
