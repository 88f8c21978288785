// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// Ragged batched decode attention against the host attend_paged, head by head: outputs, and the
// probabilities the step kernel derives from the kept logits and each head's (max, sum).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/catch.hpp"

#include <kvsieve/attention/cuda/decode.cuh>
#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;

struct ragged_case {
  std::int32_t hkv;
  std::int32_t group;
  std::int32_t d;
  std::int32_t page_size;
  std::vector<std::int32_t> sizes; // per (seq, head), seq-major: n_seq = sizes.size() / hkv
};

template <class T>
void check_ragged(const ragged_case& c, std::uint32_t seed) {
  const auto n_seq = static_cast<std::int32_t>(c.sizes.size()) / c.hkv;
  const std::int32_t lmax = std::max(1, *std::max_element(c.sizes.begin(), c.sizes.end()));
  std::int64_t pages = 0;
  for (const auto n : c.sizes) {
    pages += (n + c.page_size - 1) / c.page_size;
  }
  const store_geometry g{.n_seq = n_seq, .n_layer = 1, .n_head_kv = c.hkv, .head_dim = c.d,
                         .page_size = c.page_size,
                         .max_pages = static_cast<std::size_t>(pages + 1),
                         .max_context = lmax};
  paged_store<T> host(g);
  paged_store<T, cuda_space> dev(g);
  std::mt19937 rng(seed);
  std::normal_distribution<float> val;
  const auto d = static_cast<std::size_t>(c.d);
  const auto hkv = static_cast<std::size_t>(c.hkv);
  const auto L = static_cast<std::size_t>(lmax);
  std::vector<token_class> classes(L, token_class::none);
  cuda::device_buffer<token_class> d_classes(L);
  d_classes.upload(classes);
  for (std::int32_t s = 0; s < n_seq; ++s) {
    std::vector<float> k(L * hkv * d), v(k.size());
    for (auto& x : k) {
      x = val(rng);
    }
    for (auto& x : v) {
      x = val(rng);
    }
    std::vector<std::int32_t> offsets{0}, rows;
    for (std::int32_t h = 0; h < c.hkv; ++h) {
      const std::int32_t n = c.sizes[static_cast<std::size_t>(s * c.hkv + h)];
      for (std::int32_t j = 0; j < n; ++j) {
        rows.push_back(j);
        const auto off = (static_cast<std::size_t>(j) * hkv + static_cast<std::size_t>(h)) * d;
        host.append({s, 0, h}, {k.data() + off, d}, {v.data() + off, d},
                    {j, 0.0F, token_class::none, keep_reason::window});
      }
      offsets.push_back(static_cast<std::int32_t>(rows.size()));
    }
    cuda::device_buffer<std::int32_t> d_off(offsets.size()), d_rows(std::max<std::size_t>(rows.size(), 1));
    cuda::device_buffer<keep_reason> d_reasons(std::max<std::size_t>(rows.size(), 1));
    cuda::device_buffer<float> d_scores(std::max<std::size_t>(rows.size(), 1)), d_k(k.size()),
        d_v(v.size());
    d_off.upload(offsets);
    d_rows.upload(rows);
    d_reasons.upload(std::vector<keep_reason>(rows.size(), keep_reason::window));
    d_scores.upload(std::vector<float>(rows.size(), 0.0F));
    d_k.upload(k);
    d_v.upload(v);
    dev.assign_prompt(dev.index({s, 0, 0}), offsets, d_off.data(), d_rows.data(),
                      d_reasons.data(), d_scores.data(), d_classes.data(), d_k.data(), d_v.data());
    cuda::check(cudaDeviceSynchronize(), "compaction");
  }
  REQUIRE(dev.bytes_resident() == host.bytes_resident());

  const auto hq = hkv * static_cast<std::size_t>(c.group);
  std::vector<float> q(static_cast<std::size_t>(n_seq) * hq * d);
  for (auto& x : q) {
    x = val(rng);
  }
  cuda::device_buffer<float> d_q(q.size()), d_out(q.size());
  d_q.upload(q);
  cuda::batch_heads batch;
  batch.n_seq_in_batch = n_seq;
  batch.n_layer = 1;
  batch.layer = 0;
  batch.n_head_kv = c.hkv;
  for (std::int32_t s = 0; s < n_seq; ++s) {
    batch.seq[s] = n_seq - 1 - s; // the batch order need not be the store order
  }
  cuda::decode_workspace ws;
  const float scale = 1.0F / std::sqrt(static_cast<float>(c.d));
  cuda::decode_attention(dev.view(), batch, d_q.data(), d_out.data(), c.group, scale, lmax, ws,
                         nullptr);
  cuda::check(cudaDeviceSynchronize(), "decode");
  std::vector<float> out(q.size());
  d_out.download(out);
  std::vector<float> logits(ws.logits.size());
  ws.logits.download(logits);
  std::vector<float2> ml(ws.final_ml.size());
  ws.final_ml.download(ml);

  decode_scratch scratch;
  for (std::int32_t p = 0; p < batch.pairs(); ++p) {
    const std::int32_t s = batch.seq[p / c.hkv];
    const std::int32_t h = p % c.hkv;
    const head_id id{s, 0, h};
    const auto n = static_cast<std::size_t>(host.size(id));
    INFO("sequence " << s << " head " << h << " with " << n << " tokens");
    std::vector<float> expect(static_cast<std::size_t>(c.group) * d), prob(n);
    attend_paged(host, id, q.data() + static_cast<std::size_t>(p) * c.group * d, expect.data(),
                 c.group, scale, group_reduce::mean, scratch, std::span(prob));
    for (std::size_t i = 0; i < expect.size(); ++i) {
      REQUIRE(out[static_cast<std::size_t>(p) * c.group * d + i] ==
              Approx(expect[i]).margin(1e-4));
    }
    for (std::size_t j = 0; j < n; ++j) {
      float mean = 0.0F;
      for (std::int32_t gq = 0; gq < c.group; ++gq) {
        const auto at = static_cast<std::size_t>(p) * c.group + gq;
        mean += std::exp(logits[at * ws.token_stride + j] - ml[at].x) / ml[at].y;
      }
      REQUIRE(mean / static_cast<float>(c.group) == Approx(prob[j]).margin(1e-6));
    }
  }
}
} // namespace

TEMPLATE_TEST_CASE("ragged decode equals the host per head: page and chunk boundaries",
                   "[cuda][decode]", float, kvsieve::bfloat16, kvsieve::half) {
  const auto d = GENERATE(32, 64, 128, 256);
  const auto group = GENERATE(1, 4, 8, 12); // 12: two z-blocks of query heads
  check_ragged<TestType>({2, group, d, 16, {0, 1, 15, 16, 17, 255, 256, 257}}, 1);
}

TEST_CASE("ragged decode: skewed lengths in one launch", "[cuda][decode]") {
  check_ragged<kvsieve::bfloat16>({8, 4, 128, 64, {1, 4097, 33, 2048, 5000, 0, 700, 12}}, 2);
  check_ragged<float>({4, 2, 64, 32, {3000, 1, 1, 1, 2, 2, 4096, 64}}, 3);
}

TEST_CASE("ragged decode: 32k tokens", "[cuda][decode][long]") {
  check_ragged<kvsieve::bfloat16>({2, 8, 128, 16, {32768, 32000}}, 4);
  check_ragged<kvsieve::bfloat16>({1, 4, 64, 64, {32768}}, 5);
}

TEST_CASE("ragged decode: bad arguments", "[cuda][decode]") {
  paged_store<float, cuda_space> dev(store_geometry{.head_dim = 48, .page_size = 16,
                                                    .max_pages = 4});
  cuda::batch_heads batch;
  batch.n_seq_in_batch = 1;
  cuda::decode_workspace ws;
  cuda::device_buffer<float> buf(64);
  CHECK_THROWS_AS(cuda::decode_attention(dev.view(), batch, buf.data(), buf.data(), 1, 1.0F, 16,
                                         ws, nullptr),
                  error); // head_dim 48
  batch.n_seq_in_batch = 0;
  CHECK_THROWS_AS(cuda::decode_attention(dev.view(), batch, buf.data(), buf.data(), 1, 1.0F, 16,
                                         ws, nullptr),
                  error);
}
