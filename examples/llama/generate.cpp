// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve-generate: the reference LLaMA decoder generating through a kvsieve cache on the CPU
// (generate_main.hpp is the program; this file is its backend table). `--help` lists the options.
#include <cstddef>
#include <cstdint>
#include <utility>

#include <kvsieve/kvsieve.hpp>

#include <llama/generate_main.hpp>
#include <llama/model.hpp>

namespace {

// ---- backend table: the only place the CPU and CUDA programs differ -------------------------
struct cpu_program {
  static constexpr const char* name = "kvsieve-generate";
  using element_type = float; // KV storage element
  template <class Ladder, class Profiler>
  using cache_type = kvsieve::adaptive_cache<Ladder, Profiler, kvsieve::paged_store<element_type>>;
  static constexpr bool host_threads = true;         // --threads: the products and the attention
  static constexpr bool layer_wide_profilers = true; // --policy adakv
  static constexpr bool profile_files = true;        // --profile, --save-profile

  static auto device_gate() -> int { return -1; } // the CPU is always there

  // The cache's attention shares the model's pool (cache_options::threads).
  template <class Ladder, class Profiler>
  static auto make_cache(Ladder ladder, Profiler profiler, const llama::config& cfg,
                         std::int32_t sinks, kvsieve::thread_pool& pool)
      -> cache_type<Ladder, Profiler> {
    return cache_type<Ladder, Profiler>(
        std::move(ladder), std::move(profiler),
        {.n_seq = 1, .n_layer = cfg.n_layer, .n_head_kv = cfg.n_head_kv,
         .head_dim = cfg.head_dim, .page_size = llama::generate::page_size},
        {.n_head_q = cfg.n_head, .n_sinks = sinks, .threads = &pool});
  }
  template <class Cache>
  static auto make_model(const llama::config& cfg, const llama::model_weights& w,
                         kvsieve::thread_pool& pool) -> llama::model<Cache> {
    return llama::model<Cache>(cfg, w, pool); // llama::cpu_backend on the borrowed pool
  }
};
// --------------------------------------------------------------------------------------------

} // namespace

auto main(int argc, char** argv) -> int {
  return llama::generate::generate_main<cpu_program>(argc, argv);
}
