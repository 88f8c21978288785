// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// llama.cpp's side of bench/llama_cpp/compare.py, built against libllama by build_llama_cpp.sh
// (not part of the kvsieve build). It does what kvsieve-generate does, through llama.cpp's C API:
// the prompt's token ids in one batch (prefill), then greedy decoding one token per
// llama_decode, stopping at EOS or after --n-gen tokens; it prints one JSON line with the speeds,
// defined as kvsieve-generate defines them, and the generated ids.
//   llama_cpp_run --model M.gguf --ids "256 105 ..." --n-gen 200 --threads 1 [--kv f32|f16]
//                 [--fa on|off|auto]
// Speeds: prefill = prompt tokens / time of the prompt's llama_decode; decode = decode steps /
// time from the end of prefill to the last step's logits (argmax included, as in
// kvsieve-generate). --fa: llama.cpp's flash attention (default auto: on for the CPU, where it
// converts an F32 K/V cache to F16 on every step; off keeps the whole step in F32).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <llama.h>

namespace {

[[noreturn]] void fail(const std::string& m) {
  std::fprintf(stderr, "llama_cpp_run: %s\n", m.c_str());
  std::exit(1);
}

auto argmax(const float* logits, int n) -> llama_token {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) {
      best = i;
    }
  }
  return best;
}

} // namespace

auto main(int argc, char** argv) -> int {
  std::string model_path;
  std::vector<llama_token> ids;
  int n_gen = 200;
  int threads = 1;
  std::string kv = "f32";
  std::string fa = "auto";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--model") {
      model_path = v;
    } else if (a == "--ids") {
      std::istringstream in(v);
      for (llama_token t; in >> t;) {
        ids.push_back(t);
      }
    } else if (a == "--n-gen") {
      n_gen = std::atoi(v);
    } else if (a == "--threads") {
      threads = std::atoi(v);
    } else if (a == "--kv") {
      kv = v;
    } else if (a == "--fa") {
      fa = v;
    } else {
      fail("unknown option " + a);
    }
  }
  if (model_path.empty() || ids.empty() || n_gen < 1 || threads < 1 ||
      (kv != "f32" && kv != "f16") || (fa != "on" && fa != "off" && fa != "auto")) {
    fail("usage: llama_cpp_run --model M.gguf --ids 'ID ...' [--n-gen N] [--threads T] "
         "[--kv f32|f16] [--fa on|off|auto]");
  }
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  auto mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(model_path.c_str(), mp);
  if (model == nullptr) {
    fail("cannot load " + model_path);
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  const auto n_ctx = static_cast<std::uint32_t>(ids.size()) + static_cast<std::uint32_t>(n_gen);
  auto cp = llama_context_default_params();
  cp.n_ctx = n_ctx;
  cp.n_batch = n_ctx;
  cp.n_ubatch = n_ctx; // the whole prompt in one batch, as kvsieve's prefill
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.type_k = kv == "f32" ? GGML_TYPE_F32 : GGML_TYPE_F16;
  cp.type_v = cp.type_k;
  cp.flash_attn_type = fa == "on"    ? LLAMA_FLASH_ATTN_TYPE_ENABLED
                       : fa == "off" ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                     : LLAMA_FLASH_ATTN_TYPE_AUTO;
  cp.no_perf = true;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) {
    fail("cannot create a context");
  }

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  if (llama_decode(ctx, llama_batch_get_one(ids.data(), static_cast<std::int32_t>(ids.size()))) !=
      0) {
    fail("llama_decode failed on the prompt");
  }
  const auto t1 = clock::now();
  llama_token next = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
  std::vector<llama_token> out;
  int steps = 0;
  while (true) {
    if (llama_vocab_is_eog(vocab, next)) {
      break;
    }
    out.push_back(next);
    if (static_cast<int>(out.size()) == n_gen) {
      break;
    }
    if (llama_decode(ctx, llama_batch_get_one(&next, 1)) != 0) {
      fail("llama_decode failed at step " + std::to_string(steps));
    }
    ++steps;
    next = argmax(llama_get_logits_ith(ctx, -1), n_vocab);
  }
  const auto t2 = clock::now();
  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("{\"prompt_tokens\": %zu, \"generated_tokens\": %zu, \"threads\": %d, "
              "\"kv\": \"%s\", \"fa\": \"%s\", \"prefill_tokens_per_s\": %.3f, \"decode_tokens_per_s\": %.3f, "
              "\"generated_ids\": [",
              ids.size(), out.size(), threads, kv.c_str(), fa.c_str(),
              static_cast<double>(ids.size()) / prefill_s,
              steps > 0 ? steps / decode_s : 0.0);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::printf("%s%d", i > 0 ? ", " : "", out[i]);
  }
  std::printf("]}\n");
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
