// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve-generate-cuda: the program of generate.cpp (generate_main.hpp) with the cache on the
// GPU, so the model runs there too (llama::cuda_backend, picked by the cache's memory space).
// Only the backend table differs from generate.cpp.
#include <cstddef>
#include <cstdint>
#include <utility>

#include <kvsieve/cache/cuda/adaptive_cache.cuh>
#include <kvsieve/kvsieve.hpp>

#include <llama/cuda_backend.cuh>
#include <llama/generate_main.hpp>
#include <llama/model.hpp>

#include "gpu_probe.hpp" // tests/cuda: the same skip-or-fail verdict as the [cuda] tests

namespace {

// ---- backend table: the only place the CPU and CUDA programs differ -------------------------
struct cuda_program {
  static constexpr const char* name = "kvsieve-generate-cuda";
  using element_type = kvsieve::bfloat16; // KV storage element: half the bytes of float
  template <class Ladder, class Profiler>
  using cache_type = kvsieve::cuda::adaptive_cache<Ladder, Profiler, element_type>;
  static constexpr bool host_threads = false;         // --threads: the products run on the GPU
  static constexpr bool layer_wide_profilers = true;  // --policy adakv (Ada-KV) on the device
  static constexpr bool profile_files = false;        // --profile, --save-profile: CPU only

  // No GPU and no driver: exit 77 (CTest's skip; kvsieve-generate runs on the CPU). A driver
  // that is present but unusable, or KVSIEVE_REQUIRE_GPU=1 without a GPU: exit 1 with the CUDA
  // error. Never a skip that hides a broken GPU (issue 11, item 6).
  static auto device_gate() -> int {
    return kvsieve::testing::gpu_gate(kvsieve::testing::probe_gpu(), name, 77);
  }

  // The device pool holds a full cache of the whole context: eviction frees pages, never needs
  // them. No host threads: the attention runs on the GPU.
  template <class Ladder, class Profiler>
  static auto make_cache(Ladder ladder, Profiler profiler, const llama::config& cfg,
                         std::int32_t sinks, kvsieve::thread_pool& /*pool*/)
      -> cache_type<Ladder, Profiler> {
    constexpr std::int32_t page_size = llama::generate::page_size;
    const auto pages = static_cast<std::size_t>(cfg.n_layer) *
                       static_cast<std::size_t>(cfg.n_head_kv) *
                       static_cast<std::size_t>(cfg.max_position_embeddings / page_size + 1);
    return cache_type<Ladder, Profiler>(
        std::move(ladder), std::move(profiler),
        {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
         .head_dim = cfg.head_dim, .page_size = page_size, .max_pages = pages,
         .max_context = cfg.max_position_embeddings},
        {.n_head_q = cfg.n_head, .n_sinks = sinks});
  }
  template <class Cache>
  static auto make_model(const llama::config& cfg, const llama::model_weights& w,
                         kvsieve::thread_pool& /*pool*/) -> llama::model<Cache> {
    return llama::model<Cache>(cfg, w); // llama::cuda_backend; the weights are uploaded
  }
};
// --------------------------------------------------------------------------------------------

} // namespace

auto main(int argc, char** argv) -> int {
  return llama::generate::generate_main<cuda_program>(argc, argv);
}
