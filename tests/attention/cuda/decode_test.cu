// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// Ragged batched decode attention against a brute-force reference (double precision, per query
// head: every logit, the final (max, sum), the output) and against the host attend_paged (the
// probabilities the step kernel derives from the kept logits and each head's (max, sum)), over
// page sizes (powers of two or not, below and above the chunk), group sizes, head_dims, heads of
// many chunks and empty heads; and the workspace's bounds.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
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

// The balanced plan's tiles per chunk, by brute force: the smallest c whose items, sum of
// ceil(tiles / c), fit in `target`, else the longest head's tiles (a chunk per pair).
auto plan_reference(const std::vector<std::int32_t>& tiles, std::int32_t target) -> std::int32_t {
  const std::int32_t longest = std::max(1, *std::max_element(tiles.begin(), tiles.end()));
  for (std::int32_t c = 1; c < longest; ++c) {
    std::int64_t items = 0;
    for (const auto t : tiles) {
      items += (t + c - 1) / c;
    }
    if (items <= target) {
      return c;
    }
  }
  return longest;
}

// Checks the plan the last call left in `ws`: the tiles per chunk against the brute force, and
// the work items: every chunk of every pair once, in pair order, none for an empty pair.
void check_plan(const cuda::decode_workspace& ws, const std::vector<std::int32_t>& tiles,
                std::int32_t target) {
  const auto pairs = tiles.size();
  std::vector<std::int32_t> plan(2 + pairs);
  ws.plan.download(plan);
  const std::int32_t c = plan_reference(tiles, target);
  INFO("target " << target << " items " << plan[0] << " tiles per chunk " << plan[1]);
  REQUIRE(plan[1] == c);
  std::vector<int2> work(static_cast<std::size_t>(plan[0]));
  ws.work.download(work);
  std::size_t at = 0;
  for (std::size_t p = 0; p < pairs; ++p) {
    const std::int32_t chunks = (tiles[p] + c - 1) / c;
    REQUIRE(plan[2 + p] == chunks);
    for (std::int32_t k = 0; k < chunks; ++k, ++at) {
      REQUIRE(at < work.size());
      CHECK(work[at].x == static_cast<int>(p));
      CHECK(work[at].y == k);
    }
  }
  CHECK(at == work.size());
  std::int64_t total = 0;
  for (const auto t : tiles) {
    total += t;
  }
  // One wave when the pairs allow it, and no more chunks than tiles.
  const std::int64_t live = std::count_if(tiles.begin(), tiles.end(), [](auto t) { return t > 0; });
  CHECK(plan[0] <= std::max<std::int64_t>(target, live));
  CHECK(plan[0] <= total);
  std::vector<std::int32_t> done(ws.done.size());
  ws.done.download(done);
  CHECK(std::all_of(done.begin(), done.end(), [](std::int32_t x) { return x == 0; }));
}

// graph: run the call as a CUDA graph captured on a stream of its own and replayed twice
// (a decode that allocated or synchronised would break the capture). target: the workspace's
// target_blocks (0: the device's wave).
template <class T>
void check_ragged(const ragged_case& c, std::uint32_t seed, bool graph = false,
                  std::int32_t target = 0) {
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
  std::vector<std::vector<float>> keys(static_cast<std::size_t>(n_seq)), values(keys.size());
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
    // The reference reads what the store holds: K and V rounded to T.
    for (auto& x : k) {
      x = load_float(store_as<T>(x));
    }
    for (auto& x : v) {
      x = load_float(store_as<T>(x));
    }
    keys[static_cast<std::size_t>(s)] = std::move(k);
    values[static_cast<std::size_t>(s)] = std::move(v);
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
  cuda::decode_workspace ws(batch.pairs(), c.group, c.d, lmax);
  ws.target_blocks = target;
  const float scale = 1.0F / std::sqrt(static_cast<float>(c.d));
  if (graph) {
    cudaStream_t stream = nullptr;
    cuda::check(cudaStreamCreate(&stream), "cudaStreamCreate");
    cuda::check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    cuda::decode_attention(dev.view(), batch, d_q.data(), d_out.data(), c.group, scale, lmax, ws,
                           stream);
    cudaGraph_t g = nullptr;
    cuda::check(cudaStreamEndCapture(stream, &g), "end capture");
    cudaGraphExec_t exec = nullptr;
    cuda::check(cudaGraphInstantiate(&exec, g, 0), "cudaGraphInstantiate");
    d_out.fill_zero(stream);
    for (int replay = 0; replay < 2; ++replay) {
      cuda::check(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    }
    cuda::check(cudaStreamSynchronize(stream), "graph replay");
    cuda::check(cudaGraphExecDestroy(exec), "cudaGraphExecDestroy");
    cuda::check(cudaGraphDestroy(g), "cudaGraphDestroy");
    cuda::check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  } else {
    cuda::decode_attention(dev.view(), batch, d_q.data(), d_out.data(), c.group, scale, lmax, ws,
                           nullptr);
  }
  cuda::check(cudaDeviceSynchronize(), "decode");
  std::vector<float> out(q.size());
  d_out.download(out);
  std::vector<float> logits(ws.logits.size());
  ws.logits.download(logits);
  std::vector<float2> ml(ws.final_ml.size());
  ws.final_ml.download(ml);

  {
    std::vector<std::int32_t> tiles;
    for (std::int32_t p = 0; p < batch.pairs(); ++p) {
      const auto n = c.sizes[static_cast<std::size_t>(batch.seq[p / c.hkv] * c.hkv + p % c.hkv)];
      tiles.push_back((n + cuda::decode_chunk - 1) / cuda::decode_chunk);
    }
    // The wave the launcher aimed at, per block of query heads (target 0: the device's own
    // occupancy, not checked here).
    const std::int32_t zb = c.group <= 8 ? 1 : (c.group + 7) / 8;
    if (target > 0 && *std::max_element(c.sizes.begin(), c.sizes.end()) > 0) {
      check_plan(ws, tiles, std::max(1, target / zb));
    }
  }
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
    // Brute force, per query head: logits, their max and sum of exponentials, the output.
    const auto& k = keys[static_cast<std::size_t>(s)];
    const auto& v = values[static_cast<std::size_t>(s)];
    for (std::int32_t gq = 0; gq < c.group; ++gq) {
      const auto at = static_cast<std::size_t>(p) * c.group + gq;
      const float* qg = q.data() + at * d;
      std::vector<double> ref(n);
      double mx = -std::numeric_limits<double>::infinity();
      float dev_mx = -std::numeric_limits<float>::infinity();
      for (std::size_t j = 0; j < n; ++j) {
        const float* kj = k.data() + (j * hkv + static_cast<std::size_t>(h)) * d;
        double dot = 0.0;
        for (std::size_t e = 0; e < d; ++e) {
          dot += static_cast<double>(qg[e]) * kj[e];
        }
        ref[j] = dot * scale;
        mx = std::max(mx, ref[j]);
        const float got = logits[at * static_cast<std::size_t>(ws.token_stride) + j];
        dev_mx = std::max(dev_mx, got);
        INFO("query head " << gq << " token " << j);
        REQUIRE(got == Approx(ref[j]).margin(1e-4));
      }
      INFO("query head " << gq);
      if (n == 0) {
        CHECK(std::isinf(ml[at].x));
        CHECK(ml[at].x < 0.0F);
        CHECK(ml[at].y == 0.0F);
        for (std::size_t e = 0; e < d; ++e) {
          REQUIRE(out[at * d + e] == 0.0F);
        }
        continue;
      }
      CHECK(ml[at].x == dev_mx); // the max of the logits as written, exactly
      double sum = 0.0;
      std::vector<double> o(d, 0.0);
      for (std::size_t j = 0; j < n; ++j) {
        const double w = std::exp(ref[j] - mx);
        sum += w;
        const float* vj = v.data() + (j * hkv + static_cast<std::size_t>(h)) * d;
        for (std::size_t e = 0; e < d; ++e) {
          o[e] += w * vj[e];
        }
      }
      // (max, sum) pairs are compared as what they define: sum at the reference's max.
      CHECK(static_cast<double>(ml[at].y) * std::exp(static_cast<double>(ml[at].x) - mx) ==
            Approx(sum).epsilon(1e-4));
      for (std::size_t e = 0; e < d; ++e) {
        REQUIRE(out[at * d + e] == Approx(o[e] / sum).margin(1e-4));
      }
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

TEMPLATE_TEST_CASE("ragged decode equals the brute force per head: page and chunk boundaries",
                   "[cuda][decode]", float, kvsieve::bfloat16, kvsieve::half) {
  const auto d = GENERATE(32, 64, 128, 256);
  const auto group = GENERATE(1, 2, 4, 8, 12); // 12: two z-blocks of query heads
  check_ragged<TestType>({2, group, d, 16, {0, 1, 15, 16, 17, 255, 256, 257}}, 1);
}

TEST_CASE("ragged decode: every page size the store allows reads the same rows",
          "[cuda][decode]") {
  // Powers of two (a shift) and not (a division per row and chunk), below, at and above the
  // chunk of 256 tokens, and 1 (a page per token).
  const auto page_size = GENERATE(1, 3, 12, 16, 48, 100, 256, 300, 512);
  INFO("page_size " << page_size);
  check_ragged<kvsieve::bfloat16>({2, 4, 128, page_size, {0, 1, 255, 256, 257, 700, 1000, 2}}, 6);
  check_ragged<float>({1, 2, 64, page_size, {513, 0, 37}}, 7);
}

TEST_CASE("ragged decode: groups above 8 and heads of many chunks", "[cuda][decode]") {
  check_ragged<kvsieve::half>({1, 16, 64, 48, {2600, 0}}, 8);   // 11 chunks, two z-blocks
  check_ragged<kvsieve::bfloat16>({2, 6, 256, 12, {1800, 3}}, 9); // 8 chunks, 6 of 8 heads live
}

TEST_CASE("ragged decode: skewed lengths in one launch", "[cuda][decode]") {
  check_ragged<kvsieve::bfloat16>({8, 4, 128, 64, {1, 4097, 33, 2048, 5000, 0, 700, 12}}, 2);
  check_ragged<float>({4, 2, 64, 32, {3000, 1, 1, 1, 2, 2, 4096, 64}}, 3);
}

TEST_CASE("ragged decode: the balanced plan at every wave size gives the same attention",
          "[cuda][decode]") {
  // 1: one block takes every pair whole, one chunk each; 3 and 7: long heads split into chunks
  // of many tiles, short ones whole, blocks looping over several items; 40: a chunk per tile
  // (the plan of a wave larger than the work); 1000: more blocks than items.
  const auto target = GENERATE(1, 3, 7, 40, 1000);
  INFO("target_blocks " << target);
  check_ragged<kvsieve::bfloat16>({4, 4, 128, 48, {1, 4097, 33, 2048, 5000, 0, 700, 12}},
                                  11, false, target);
  check_ragged<kvsieve::half>({1, 12, 64, 16, {2600, 0, 300}}, 12, false, target); // two z-blocks
}

TEST_CASE("ragged decode: 32k tokens", "[cuda][decode][long]") {
  check_ragged<kvsieve::bfloat16>({2, 8, 128, 16, {32768, 32000}}, 4);
  check_ragged<kvsieve::bfloat16>({1, 4, 64, 64, {32768}}, 5);
}

TEST_CASE("ragged decode: more pairs than the plan's threads and than the wave",
          "[cuda][decode]") {
  // 150 sequences x 2 KV heads = 300 pairs: the plan's scan gives each of its 256 threads a run
  // of two pairs, and a wave of 7 or 64 is smaller than the pairs (every pair one chunk).
  std::mt19937 rng(13);
  std::uniform_int_distribution<std::int32_t> len(0, 600);
  std::vector<std::int32_t> sizes(300);
  for (auto& n : sizes) {
    n = len(rng) < 60 ? 0 : len(rng); // about 10% empty heads
  }
  const auto target = GENERATE(7, 64, 1000);
  INFO("target_blocks " << target);
  check_ragged<kvsieve::bfloat16>({2, 2, 32, 16, sizes}, 14, false, target);
}

TEST_CASE("ragged decode: captured into a CUDA graph, allocating nothing, and replayed",
          "[cuda][decode]") {
  check_ragged<kvsieve::bfloat16>({2, 4, 128, 12, {0, 700, 1, 256}}, 10, true);
  check_ragged<kvsieve::bfloat16>({2, 4, 128, 12, {0, 1700, 1, 256}}, 10, true, 3); // split
}

TEST_CASE("ragged decode: bad arguments", "[cuda][decode]") {
  paged_store<float, cuda_space> dev(store_geometry{.head_dim = 48, .page_size = 16,
                                                    .max_pages = 4});
  cuda::batch_heads batch;
  batch.n_seq_in_batch = 1;
  cuda::decode_workspace ws(1, 1, 256, 16);
  cuda::device_buffer<float> buf(64);
  CHECK_THROWS_AS(cuda::decode_attention(dev.view(), batch, buf.data(), buf.data(), 1, 1.0F, 16,
                                         ws, nullptr),
                  error); // head_dim 48
  batch.n_seq_in_batch = 0;
  CHECK_THROWS_AS(cuda::decode_attention(dev.view(), batch, buf.data(), buf.data(), 1, 1.0F, 16,
                                         ws, nullptr),
                  error);
  CHECK_THROWS_AS(cuda::decode_workspace(0, 1, 128, 16), error);
  CHECK_THROWS_AS(cuda::decode_workspace(1, 1, 128, -1), error);
}

TEST_CASE("decode workspace: allocated once, its bounds enforced before any launch",
          "[cuda][decode]") {
  const store_geometry g{.n_seq = 2, .n_layer = 1, .n_head_kv = 2, .head_dim = 64,
                         .page_size = 16, .max_pages = 64, .max_context = 512};
  paged_store<float, cuda_space> dev(g);
  cuda::batch_heads batch;
  batch.n_seq_in_batch = 1;
  batch.n_head_kv = 2;
  cuda::device_buffer<float> q(2 * 4 * 64), out(q.size());
  cuda::decode_workspace ws(2, 4, 64, 512); // one sequence of 2 KV heads, group 4, 512 tokens
  CHECK(ws.splits == 2);
  CHECK(ws.token_stride == 512);
  CHECK(ws.logits.size() == 2 * 4 * 512);
  CHECK(ws.final_ml.size() == 2 * 4);
  CHECK(ws.partial_o.size() == 2 * 4 * 2 * 64);
  CHECK(ws.plan.size() == 2 + 2);     // items, tiles per chunk, then chunks per pair
  CHECK(ws.work.size() == 2 * 2);     // at most a chunk per tile
  CHECK(ws.done.size() == 2);         // one block of query heads per pair at group 4
  CHECK(ws.sm_count > 0);
  const float* logits = ws.logits.data();
  const float2* partial = ws.partial_ml.data();
  auto expect_refused = [&](std::int32_t group, std::int32_t tokens, const char* what) {
    INFO(what);
    try {
      cuda::decode_attention(dev.view(), batch, q.data(), out.data(), group, 1.0F, tokens, ws,
                             nullptr);
      FAIL("the call was accepted");
    } catch (const error& e) {
      CHECK(e.code() == errc::invalid_argument);
      CHECK(std::string(e.what()).find("exceeds its decode_workspace") != std::string::npos);
    }
  };
  expect_refused(4, 513, "more tokens than the workspace holds");
  expect_refused(8, 16, "a larger group");
  batch.n_seq_in_batch = 2;
  expect_refused(4, 16, "more pairs");
  batch.n_seq_in_batch = 1;
  // Calls within the bounds, smaller ones included, reuse the same buffers.
  cuda::decode_attention(dev.view(), batch, q.data(), out.data(), 4, 1.0F, 512, ws, nullptr);
  cuda::decode_attention(dev.view(), batch, q.data(), out.data(), 2, 1.0F, 100, ws, nullptr);
  cuda::decode_attention(dev.view(), batch, q.data(), out.data(), 4, 1.0F, 0, ws, nullptr);
  cuda::check(cudaDeviceSynchronize(), "decode");
  CHECK(ws.logits.data() == logits);
  CHECK(ws.partial_ml.data() == partial);
  std::vector<std::int32_t> plan(ws.plan.size());
  ws.plan.download(plan);
  CHECK(plan[0] == 0); // the last call had no tokens: no work item, every output zero
  CHECK(plan[2] == 0);
  CHECK(plan[3] == 0);
  CHECK(ws.logits.size() == 2 * 4 * 512);
  std::vector<float> o(out.size());
  out.download(o);
  CHECK(std::all_of(o.begin(), o.end(), [](float x) { return x == 0.0F; })); // empty heads
  // A default workspace holds nothing: every call is refused.
  cuda::decode_workspace none;
  CHECK_THROWS_AS(cuda::decode_attention(dev.view(), batch, q.data(), out.data(), 1, 1.0F, 0,
                                         none, nullptr),
                  error);
  paged_store<float, cuda_space> wide(store_geometry{.head_dim = 128, .page_size = 16,
                                                     .max_pages = 4});
  batch.n_head_kv = 1;
  CHECK_THROWS_AS(cuda::decode_attention(wide.view(), batch, q.data(), out.data(), 1, 1.0F, 16,
                                         ws, nullptr),
                  error); // head_dim 128 > 64
}
