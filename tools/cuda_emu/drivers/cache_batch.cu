// Batched decode through cuda::adaptive_cache (several sequences of different lengths at every
// layer, in one call per layer, batch order shuffled) against one host adaptive_cache stepped per
// (sequence, layer). Midway one sequence is released and prefilled again (page reuse, clear_heads).
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "cache/cache_fixture.hpp"
#include "common/catch.hpp"

#include <kvsieve/cache/cuda/adaptive_cache.cuh>
#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;
using kvsieve::testing::make_problem;
using kvsieve::testing::problem;

template <class T>
auto device_copy(const std::vector<T>& host) -> cuda::device_buffer<T> {
  cuda::device_buffer<T> d(std::max<std::size_t>(host.size(), 1));
  d.upload(host);
  return d;
}

template <class T, class Ladder>
void batch_compare(const Ladder& ladder, double threshold, cache_options opt, std::int32_t hq,
                   std::int32_t hkv, std::int32_t d, std::int32_t page_size,
                   std::vector<std::int32_t> prompt, std::int32_t steps, std::uint32_t seed) {
  const auto n_seq = static_cast<std::int32_t>(prompt.size());
  const std::int32_t n_layer = 2;
  opt.n_head_q = hq;
  const store_geometry g{.n_seq = n_seq, .n_layer = n_layer, .n_head_kv = hkv, .head_dim = d,
                         .page_size = page_size, .max_pages = 8192,
                         .max_context = *std::max_element(prompt.begin(), prompt.end()) + steps + 1};
  adaptive_cache<Ladder, recovery_profiler, paged_store<T>> host(ladder, recovery_profiler(threshold), g, opt);
  cuda::adaptive_cache<Ladder, recovery_profiler, T> dev(ladder, recovery_profiler(threshold), g, opt);
  // problems[s][l]
  std::vector<std::vector<problem>> pr(static_cast<std::size_t>(n_seq));
  for (std::int32_t s = 0; s < n_seq; ++s)
    for (std::int32_t l = 0; l < n_layer; ++l)
      pr[s].push_back(make_problem(prompt[s], hq, hkv, d, steps, seed + 10 * s + l));
  const double tol = std::is_same_v<T, float> ? 2e-4 : 2e-3;
  const auto D = static_cast<std::size_t>(d);
  auto prefill = [&](std::int32_t s) {
    for (std::int32_t l = 0; l < n_layer; ++l) {
      const auto& p = pr[s][l];
      const auto L = static_cast<std::size_t>(p.length);
      std::vector<float> hout(L * hq * D);
      host.prefill(s, l, {p.q.data(), {L, (size_t)hq, D}}, {p.k.data(), {L, (size_t)hkv, D}},
                   {p.v.data(), {L, (size_t)hkv, D}}, p.classes, {hout.data(), {L, (size_t)hq, D}});
      auto q = device_copy(p.q), k = device_copy(p.k), v = device_copy(p.v);
      cuda::device_buffer<float> out(L * hq * D);
      dev.prefill(s, l, {q.data(), {L, (size_t)hq, D}}, {k.data(), {L, (size_t)hkv, D}},
                  {v.data(), {L, (size_t)hkv, D}}, p.classes, {out.data(), {L, (size_t)hq, D}});
      std::vector<float> dout(L * hq * D);
      out.download(dout);
      for (std::size_t i = 0; i < dout.size(); ++i) REQUIRE(dout[i] == Approx(hout[i]).margin(tol));
      for (std::int32_t h = 0; h < hkv; ++h) REQUIRE(dev.choice({s, l, h}) == host.choice({s, l, h}));
    }
  };
  for (std::int32_t s = 0; s < n_seq; ++s) prefill(s);
  std::vector<std::int32_t> step_of(n_seq, 0);
  std::mt19937 rng(seed);
  auto compare_heads = [&](std::int32_t step) {
    for (std::int32_t s = 0; s < n_seq; ++s)
      for (std::int32_t l = 0; l < n_layer; ++l)
        for (std::int32_t h = 0; h < hkv; ++h) {
          std::vector<std::int32_t> pos;
          for (const auto& t : dev.store().tokens({s, l, h})) pos.push_back(t.meta.position);
          std::sort(pos.begin(), pos.end());
          INFO("step " << step << " seq " << s << " layer " << l << " head " << h);
          REQUIRE(pos == reference::store_positions(host.store(), {s, l, h}));
        }
  };
  compare_heads(-1);
  const std::size_t qsz = static_cast<std::size_t>(hq) * D, kvsz = static_cast<std::size_t>(hkv) * D;
  for (std::int32_t step = 0; step < steps; ++step) {
    if (step == steps / 2) { // release sequence 0 and prefill it again
      host.release(0);
      dev.release(0);
      CHECK(dev.store().bytes_resident() == host.store().bytes_resident());
      prefill(0);
      step_of[0] = 0;
    }
    std::vector<std::int32_t> seqs(n_seq);
    std::iota(seqs.begin(), seqs.end(), 0);
    std::shuffle(seqs.begin(), seqs.end(), rng);
    for (std::int32_t l = 0; l < n_layer; ++l) {
      std::vector<float> q(n_seq * qsz), k(n_seq * kvsz), v(n_seq * kvsz);
      std::vector<token_class> cls(n_seq);
      for (std::int32_t b = 0; b < n_seq; ++b) {
        const auto s = seqs[b];
        const auto& p = pr[s][l];
        const auto st = static_cast<std::size_t>(step_of[s]);
        std::copy(p.dq[st].begin(), p.dq[st].end(), q.begin() + b * qsz);
        std::copy(p.dk[st].begin(), p.dk[st].end(), k.begin() + b * kvsz);
        std::copy(p.dv[st].begin(), p.dv[st].end(), v.begin() + b * kvsz);
        cls[b] = p.dclasses[st];
      }
      auto dq = device_copy(q), dk = device_copy(k), dv = device_copy(v);
      cuda::device_buffer<float> dout(q.size());
      const auto nb = seqs.size();
      dev.decode(l, seqs, {dq.data(), {nb, (size_t)hq, D}}, {dk.data(), {nb, (size_t)hkv, D}},
                 {dv.data(), {nb, (size_t)hkv, D}}, cls, {dout.data(), {nb, (size_t)hq, D}});
      std::vector<float> got(q.size());
      dout.download(got);
      for (std::int32_t b = 0; b < n_seq; ++b) {
        const auto s = seqs[b];
        const auto& p = pr[s][l];
        const auto st = static_cast<std::size_t>(step_of[s]);
        std::vector<float> out(qsz);
        host.decode(s, l, {p.dq[st].data(), {(size_t)hq, D}}, {p.dk[st].data(), {(size_t)hkv, D}},
                    {p.dv[st].data(), {(size_t)hkv, D}}, p.dclasses[st], {out.data(), {(size_t)hq, D}});
        INFO("step " << step << " seq " << s << " layer " << l);
        for (std::size_t i = 0; i < qsz; ++i) REQUIRE(got[b * qsz + i] == Approx(out[i]).margin(tol));
      }
    }
    for (auto& x : step_of) ++x;
    compare_heads(step);
  }
  dev.synchronize();
  const auto hr = host.report();
  const auto dr = dev.report();
  CHECK(dr.bytes_resident == hr.bytes_resident);
  CHECK(dr.kv_bytes_kept == hr.kv_bytes_kept);
  CHECK(dr.mean_kept_fraction == Approx(hr.mean_kept_fraction).epsilon(1e-9));
  std::fprintf(stderr, "batch ok: %d seqs hq %d hkv %d d %d ps %d steps %d bytes %zu/%zu\n", n_seq, hq, hkv, d,
               page_size, steps, dr.bytes_resident, dr.bytes_full);
}
} // namespace

TEST_CASE("batched cache: FastGen ladder, GQA, bf16", "[batch]") {
  batch_compare<kvsieve::bfloat16>(make_fastgen_ladder(), 0.9, {}, 8, 2, 64, 16, {37, 300, 129}, 120, 21);
}
TEST_CASE("batched cache: FastGen ladder, MHA, float, thresholds", "[batch]") {
  const double threshold = GENERATE(0.7, 0.98);
  batch_compare<float>(make_fastgen_ladder(), threshold, {}, 4, 4, 32, 8, {64, 17, 250}, 100, 22);
}
TEST_CASE("batched cache: section-6 options", "[batch]") {
  fastgen_params fp;
  fp.ranking = score_mode::mean;
  fp.window_base = length_base::prompt;
  fp.budget_base = length_base::prompt;
  batch_compare<float>(make_fastgen_ladder(fp), 0.95, {.n_sinks = 4, .group = group_reduce::worst}, 8, 2, 128, 32, {90, 260}, 100, 23);
  batch_compare<kvsieve::half>(make_fastgen_ladder(), 0.9,
                   {.recovery_rows = 64, .new_token = new_token_mode::drop_before_attention,
                    .generated = generated_class_mode::frozen}, 12, 1, 64, 16, {100, 40, 300}, 100, 24);
}
// Small enough for ThreadSanitizer (build.sh tsan cache_batch, then run "[tsan]").
TEST_CASE("tsan: small batched runs", "[tsan]") {
  batch_compare<kvsieve::bfloat16>(make_fastgen_ladder(), 0.9, {}, 8, 2, 64, 16, {37, 70}, 12, 31);
  fastgen_params fp;
  fp.ranking = score_mode::mean;
  fp.budget_base = length_base::prompt;
  batch_compare<float>(make_fastgen_ladder(fp), 0.95, {.n_sinks = 4, .group = group_reduce::worst}, 4, 4, 32, 8, {40, 25}, 10, 32);
  batch_compare<float>(make_fastgen_ladder(), 0.9, {.recovery_rows = 16, .new_token = new_token_mode::drop_before_attention, .generated = generated_class_mode::frozen}, 12, 1, 32, 8, {30, 50}, 10, 33);
}
