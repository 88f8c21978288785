// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve::cuda::prefill_attention against references on the host: a row-by-row double-precision
// softmax (output and statistics), and kvsieve::causal_attention + head_stats (the host twin).
// K/V are rounded to the storage type first and the references read the rounded values, so the
// only differences left are fp32 summation order and exp2f: one tolerance fits every dtype.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/catch.hpp"

#include <kvsieve/attention/cuda/prefill.cuh>
#include <kvsieve/attention/prefill.hpp>
#include <kvsieve/profile/attention_stats.hpp>

using kvsieve::errc;
namespace kc = kvsieve::cuda;

namespace {

template <class KV>
auto round_to(float x) -> KV {
  if constexpr (std::is_same_v<KV, float>) {
    return x;
  } else if constexpr (std::is_same_v<KV, __half>) {
    return __float2half_rn(x);
  } else {
    return __float2bfloat16_rn(x);
  }
}

template <class KV>
auto widen(KV x) -> float {
  if constexpr (std::is_same_v<KV, float>) {
    return x;
  } else if constexpr (std::is_same_v<KV, __half>) {
    return __half2float(x);
  } else {
    return __bfloat162float(x);
  }
}

struct problem {
  std::int32_t length = 1;
  std::int32_t n_head_q = 1;
  std::int32_t n_head_kv = 1;
  std::int32_t head_dim = 64;
  std::int32_t first_row = 0;
  std::vector<std::int32_t> windows;
  float scale = 0.0F; // 0: 1 / sqrt(head_dim)
  double rtol = 1e-4;

  [[nodiscard]] auto attn_scale() const -> float {
    return scale != 0.0F ? scale : 1.0F / std::sqrt(static_cast<float>(head_dim));
  }
  [[nodiscard]] auto q_size() const -> std::size_t {
    return static_cast<std::size_t>(length) * static_cast<std::size_t>(n_head_q) *
           static_cast<std::size_t>(head_dim);
  }
  [[nodiscard]] auto kv_size() const -> std::size_t {
    return static_cast<std::size_t>(length) * static_cast<std::size_t>(n_head_kv) *
           static_cast<std::size_t>(head_dim);
  }
  [[nodiscard]] auto stat_size() const -> std::size_t {
    return static_cast<std::size_t>(n_head_q) * static_cast<std::size_t>(length);
  }
  [[nodiscard]] auto describe() const -> std::string {
    return "L=" + std::to_string(length) + " hq=" + std::to_string(n_head_q) +
           " hkv=" + std::to_string(n_head_kv) + " d=" + std::to_string(head_dim) +
           " first_row=" + std::to_string(first_row) +
           " windows=" + std::to_string(windows.size());
  }
};

/// Inputs: q float; k, v stored as KV, with their widened copies for the references.
template <class KV>
struct inputs {
  std::vector<float> q;
  std::vector<KV> k;
  std::vector<KV> v;
  std::vector<float> k_wide;
  std::vector<float> v_wide;

  inputs(const problem& p, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0F, 1.0F);
    q.resize(p.q_size());
    for (auto& x : q) {
      x = nd(rng);
    }
    for (auto* pair : {&k, &v}) {
      pair->resize(p.kv_size());
      for (auto& x : *pair) {
        x = round_to<KV>(nd(rng));
      }
    }
    k_wide.resize(k.size());
    v_wide.resize(v.size());
    std::transform(k.begin(), k.end(), k_wide.begin(), widen<KV>);
    std::transform(v.begin(), v.end(), v_wide.begin(), widen<KV>);
  }
};

struct outputs {
  std::vector<float> out;    // [L, hq, d]
  std::vector<float> score;  // [hq, L]
  std::vector<float> colsum; // [hq, L]
  std::vector<float> near;   // [hq, n_windows, L]
};

auto stats_of(const problem& p, float* score, float* colsum, float* near) -> kc::prefill_stats {
  kc::prefill_stats s;
  s.score = score;
  s.colsum = colsum;
  s.near = p.windows.empty() ? nullptr : near;
  s.n_windows = static_cast<std::int32_t>(p.windows.size());
  std::copy(p.windows.begin(), p.windows.end(), s.windows.begin());
  s.first_row = p.first_row;
  return s;
}

/// Runs the kernel. `offset` elements of padding before every tensor make its pointer
/// misaligned (offset 1), which must take the scalar load path and give the same numbers.
/// Every output starts as NaN, so an element the kernels forget to write fails the comparison.
template <class KV>
auto run_device(const problem& p, const inputs<KV>& in, bool with_stats, std::size_t offset = 0)
    -> outputs {
  kc::device_buffer<float> q(p.q_size() + offset);
  kc::device_buffer<KV> k(p.kv_size() + offset);
  kc::device_buffer<KV> v(p.kv_size() + offset);
  kc::device_buffer<float> out(p.q_size() + offset);
  kc::device_buffer<float> score(p.stat_size());
  kc::device_buffer<float> colsum(p.stat_size());
  kc::device_buffer<float> near(std::max<std::size_t>(1, p.stat_size() * p.windows.size()));
  q.upload(in.q, offset);
  k.upload(in.k, offset);
  v.upload(in.v, offset);
  for (auto* buf : {&out, &score, &colsum, &near}) {
    kc::check(cudaMemset(buf->data(), 0xFF, buf->bytes()), "cudaMemset NaN");
  }
  cudaStream_t stream = nullptr;
  kc::check(cudaStreamCreate(&stream), "cudaStreamCreate");
  const auto stats = stats_of(p, score.data(), colsum.data(), near.data());
  kc::prefill_attention<KV>(q.data() + offset, k.data() + offset, v.data() + offset,
                            out.data() + offset, p.length, p.n_head_q, p.n_head_kv, p.head_dim,
                            p.attn_scale(), with_stats ? &stats : nullptr, stream);
  kc::check(cudaStreamSynchronize(stream), "prefill_attention");
  kc::check(cudaStreamDestroy(stream), "cudaStreamDestroy");

  outputs r;
  r.out.resize(p.q_size());
  out.download(r.out, offset);
  if (with_stats) {
    r.score.resize(p.stat_size());
    r.colsum.resize(p.stat_size());
    r.near.resize(p.stat_size() * p.windows.size());
    score.download(r.score);
    colsum.download(r.colsum);
    if (!r.near.empty()) {
      near.download(r.near);
    }
  }
  return r;
}

struct reference {
  std::vector<double> out;
  std::vector<double> score;
  std::vector<double> colsum;
  std::vector<double> near;
};

/// Row i of query head qh in double: a[j] = A[i, j] for j <= i.
void reference_row(const problem& p, const std::vector<float>& q, const std::vector<float>& k,
                   std::int32_t qh, std::int32_t i, std::vector<double>& a) {
  const auto d = static_cast<std::size_t>(p.head_dim);
  const std::int32_t kvh = qh / (p.n_head_q / p.n_head_kv);
  const float* qi = &q[(static_cast<std::size_t>(i) * static_cast<std::size_t>(p.n_head_q) +
                        static_cast<std::size_t>(qh)) * d];
  a.resize(static_cast<std::size_t>(i) + 1);
  double m = -1e300;
  for (std::int32_t j = 0; j <= i; ++j) {
    const float* kj = &k[(static_cast<std::size_t>(j) * static_cast<std::size_t>(p.n_head_kv) +
                          static_cast<std::size_t>(kvh)) * d];
    double dot = 0.0;
    for (std::size_t c = 0; c < d; ++c) {
      dot += static_cast<double>(qi[c]) * static_cast<double>(kj[c]);
    }
    a[static_cast<std::size_t>(j)] = dot * static_cast<double>(p.attn_scale());
    m = std::max(m, a[static_cast<std::size_t>(j)]);
  }
  double sum = 0.0;
  for (auto& x : a) {
    x = std::exp(x - m);
    sum += x;
  }
  for (auto& x : a) {
    x /= sum;
  }
}

/// The whole problem in double, one thread per query head (heads write disjoint slices).
template <class KV>
auto compute_reference(const problem& p, const inputs<KV>& in) -> reference {
  const auto L = static_cast<std::size_t>(p.length);
  const auto d = static_cast<std::size_t>(p.head_dim);
  const auto hq = static_cast<std::size_t>(p.n_head_q);
  const auto nw = p.windows.size();
  reference r;
  r.out.assign(p.q_size(), 0.0);
  r.score.assign(p.stat_size(), 0.0);
  r.colsum.assign(p.stat_size(), 0.0);
  r.near.assign(p.stat_size() * nw, 0.0);
  const auto one_head = [&](std::int32_t qh) {
    const std::int32_t kvh = qh / (p.n_head_q / p.n_head_kv);
    const auto h = static_cast<std::size_t>(qh);
    std::vector<double> a;
    for (std::int32_t i = 0; i < p.length; ++i) {
      reference_row(p, in.q, in.k_wide, qh, i, a);
      double* oi = &r.out[(static_cast<std::size_t>(i) * hq + h) * d];
      for (std::int32_t j = 0; j <= i; ++j) {
        const double x = a[static_cast<std::size_t>(j)];
        const float* vj = &in.v_wide[(static_cast<std::size_t>(j) *
                                          static_cast<std::size_t>(p.n_head_kv) +
                                      static_cast<std::size_t>(kvh)) * d];
        for (std::size_t c = 0; c < d; ++c) {
          oi[c] += x * static_cast<double>(vj[c]);
        }
        const auto col = h * L + static_cast<std::size_t>(j);
        r.score[col] += x;
        if (i >= p.first_row) {
          r.colsum[col] += x;
          for (std::size_t w = 0; w < nw; ++w) {
            if (i - j < p.windows[w]) {
              r.near[(h * nw + w) * L + static_cast<std::size_t>(j)] += x;
            }
          }
        }
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(hq);
  for (std::int32_t qh = 0; qh < p.n_head_q; ++qh) {
    threads.emplace_back(one_head, qh);
  }
  for (auto& t : threads) {
    t.join();
  }
  return r;
}

/// |got - want| <= atol + rtol * |want| for every element (a NaN fails); reports the worst one.
void check_close(const char* what, std::span<const float> got, std::span<const double> want,
                 double rtol, double atol) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0;
  std::size_t at = 0;
  std::size_t bad = 0;
  for (std::size_t n = 0; n < got.size(); ++n) {
    const double err = std::abs(static_cast<double>(got[n]) - want[n]);
    const double ratio = std::isnan(err) ? 1e30 : err / (atol + rtol * std::abs(want[n]));
    if (ratio > 1.0) {
      ++bad;
    }
    if (ratio > worst) {
      worst = ratio;
      at = n;
    }
  }
  INFO(what << ": " << bad << " of " << got.size() << " elements off; worst at " << at
            << ": got " << (got.empty() ? 0.0F : got[at]) << ", want "
            << (want.empty() ? 0.0 : want[at]) << " (error / tolerance = " << worst << ")");
  CHECK(bad == 0);
}

template <class KV>
void check_problem(const problem& p, std::uint32_t seed = 7) {
  INFO(p.describe());
  const inputs<KV> in(p, seed);
  const auto ref = compute_reference(p, in);
  const auto got = run_device(p, in, true);
  check_close("out", got.out, ref.out, p.rtol, 1e-5);
  check_close("score", got.score, ref.score, p.rtol, 1e-6);
  check_close("colsum", got.colsum, ref.colsum, p.rtol, 1e-6);
  check_close("near", got.near, ref.near, p.rtol, 1e-6);
  // The statistics ride on the same attention kernel: without them `out` is bit-identical.
  const auto plain = run_device(p, in, false);
  CHECK(std::memcmp(plain.out.data(), got.out.data(), got.out.size() * sizeof(float)) == 0);
}

struct head_shape {
  std::int32_t n_head_q;
  std::int32_t n_head_kv;
  std::int32_t head_dim;
};

using kv_types = std::tuple<float, __half, __nv_bfloat16>;

} // namespace

TEMPLATE_LIST_TEST_CASE("prefill_attention equals the double reference across lengths and GQA",
                        "[cuda][prefill]", kv_types) {
  const auto shape = GENERATE(head_shape{4, 4, 64}, head_shape{8, 2, 128}, head_shape{4, 1, 32},
                              head_shape{6, 2, 64}, head_shape{2, 1, 256});
  const auto length = GENERATE(1, 2, 17, 63, 64, 65, 1000);
  problem p;
  p.length = length;
  p.n_head_q = shape.n_head_q;
  p.n_head_kv = shape.n_head_kv;
  p.head_dim = shape.head_dim;
  p.windows = {1, 5, 64, length, 100000};
  p.first_row = GENERATE(0, 1);
  if (p.first_row == 1) {
    p.first_row = std::max(0, length - 5); // the last rows only, as the profiler's recovery rows
  }
  check_problem<TestType>(p);
}

TEMPLATE_LIST_TEST_CASE("prefill_attention at 4096 tokens, MHA and GQA", "[cuda][prefill]",
                        kv_types) {
  const auto shape = GENERATE(head_shape{2, 2, 64}, head_shape{4, 1, 128});
  problem p;
  p.length = 4096;
  p.n_head_q = shape.n_head_q;
  p.n_head_kv = shape.n_head_kv;
  p.head_dim = shape.head_dim;
  p.first_row = 4096 - 64;
  p.windows = {1, 32, 100, 4096};
  check_problem<TestType>(p);
}

TEST_CASE("prefill_attention statistics: every first_row and window edge", "[cuda][prefill]") {
  problem p;
  p.length = 130;
  p.n_head_q = 4;
  p.n_head_kv = 2;
  p.head_dim = 64;
  p.first_row = GENERATE(0, 63, 64, 65, 129, 130); // 130 = L: no recovery rows, colsum = 0
  p.windows = {1, 2, 63, 64, 65, 129, 130, 131};   // eight windows, the most the API takes
  check_problem<float>(p);
}

TEST_CASE("prefill_attention without windows takes a null near", "[cuda][prefill]") {
  problem p;
  p.length = 100;
  p.n_head_q = 2;
  p.n_head_kv = 1;
  p.head_dim = 128;
  p.first_row = 50;
  check_problem<__nv_bfloat16>(p);
}

TEST_CASE("prefill_attention with a peaked softmax (scale 1: large running-max jumps)",
          "[cuda][prefill]") {
  problem p;
  p.length = GENERATE(65, 700);
  p.n_head_q = 4;
  p.n_head_kv = 2;
  p.head_dim = 64;
  p.scale = 1.0F;
  p.rtol = 1e-3; // logits of size ~8 carry ~1e-6 absolute float error, amplified by exp
  p.windows = {1, 16};
  check_problem<float>(p);
}

TEST_CASE("prefill_attention with more query heads per KV head than one block holds",
          "[cuda][prefill]") {
  problem p;
  p.length = GENERATE(17, 65);
  p.n_head_q = 160; // group 80 > 64: two head chunks per KV head
  p.n_head_kv = 2;
  p.head_dim = 32;
  p.windows = {3};
  check_problem<__half>(p);
}

TEMPLATE_LIST_TEST_CASE("prefill_attention on misaligned pointers takes the scalar path",
                        "[cuda][prefill]", kv_types) {
  problem p;
  p.length = 77;
  p.n_head_q = 4;
  p.n_head_kv = 2;
  p.head_dim = 64;
  p.first_row = 10;
  p.windows = {4};
  const inputs<TestType> in(p, 11);
  const auto aligned = run_device(p, in, true);
  const auto shifted = run_device(p, in, true, 1);
  CHECK(aligned.out == shifted.out);
  CHECK(aligned.score == shifted.score);
  CHECK(aligned.colsum == shifted.colsum);
  CHECK(aligned.near == shifted.near);
  const auto ref = compute_reference(p, in);
  check_close("out", shifted.out, ref.out, p.rtol, 1e-5);
}

TEST_CASE("prefill_attention statistics load into head_stats and match the host twin",
          "[cuda][prefill]") {
  problem p;
  p.length = 200;
  p.n_head_q = 2;
  p.n_head_kv = 1;
  p.head_dim = 64;
  p.first_row = 150;
  p.windows = {8, 32};
  const inputs<float> in(p, 3);
  const auto got = run_device(p, in, true);
  const auto L = static_cast<std::size_t>(p.length);
  const auto d = static_cast<std::size_t>(p.head_dim);
  for (std::int32_t qh = 0; qh < p.n_head_q; ++qh) {
    const auto h = static_cast<std::size_t>(qh);
    kvsieve::head_stats host;
    host.reset(p.length, p.first_row, p.windows);
    std::vector<float> out(p.q_size());
    std::vector<float> row;
    kvsieve::causal_attention({in.q.data() + h * d, 2 * d}, {in.k_wide.data(), d},
                              {in.v_wide.data(), d}, out.data() + h * d, 2 * d, p.length,
                              p.head_dim, p.attn_scale(), row,
                              [&](std::int32_t i, std::span<const float> a) {
                                host.accumulate_row(i, a);
                              });
    kvsieve::head_stats device;
    device.assign(p.first_row, p.windows, std::span(got.score).subspan(h * L, L),
                  std::span(got.colsum).subspan(h * L, L),
                  std::span(got.near).subspan(h * 2 * L, 2 * L));
    check_close("score", std::span(got.score).subspan(h * L, L), host.score(), 1e-4, 1e-6);
    check_close("colsum", std::span(got.colsum).subspan(h * L, L), host.colsum(), 1e-4, 1e-6);
    for (const auto w : p.windows) {
      std::vector<float> dn(device.near(w).begin(), device.near(w).end());
      check_close("near", dn, host.near(w), 1e-4, 1e-6);
    }
    std::vector<kvsieve::keep_reason> keep(L, kvsieve::keep_reason::evicted);
    for (std::size_t j = 0; j < L; j += 7) {
      keep[j] = kvsieve::keep_reason::rule;
    }
    CHECK(device.recovered(keep, 8) == Approx(host.recovered(keep, 8)).epsilon(1e-4));
    CHECK(device.recovered(keep, 0) == Approx(host.recovered(keep, 0)).epsilon(1e-4));
  }
}

// 32k tokens: the full double reference is O(L^2 d) per head, so this case checks sampled rows
// exactly and the rest through invariants (rows sum to 1; a window >= L is colsum; near_w at
// sampled columns from the w rows below them).
TEST_CASE("prefill_attention at 32k tokens", "[cuda][prefill][long]") {
  problem p;
  p.length = 32768;
  p.n_head_q = 2;
  p.n_head_kv = 1;
  p.head_dim = 64;
  p.first_row = 32768 - 1000;
  p.windows = {1, 4, 32768};
  const inputs<__nv_bfloat16> in(p, 5);
  const auto got = run_device(p, in, true);
  const auto L = static_cast<std::size_t>(p.length);
  const auto d = static_cast<std::size_t>(p.head_dim);
  const auto nw = p.windows.size();
  std::vector<std::int32_t> samples = {0, 1, 63, 64, 65, 4095, 4096, 16383, 30000, 31767, 31768,
                                       32700, 32766, 32767};
  std::vector<double> a;
  for (std::int32_t qh = 0; qh < p.n_head_q; ++qh) {
    const auto h = static_cast<std::size_t>(qh);
    double score_total = 0.0;
    double colsum_total = 0.0;
    for (std::size_t j = 0; j < L; ++j) {
      score_total += got.score[h * L + j];
      colsum_total += got.colsum[h * L + j];
    }
    CHECK(score_total == Approx(static_cast<double>(p.length)).epsilon(1e-4));
    CHECK(colsum_total == Approx(static_cast<double>(p.length - p.first_row)).epsilon(1e-4));
    const std::span<const float> colsum(got.colsum.data() + h * L, L);
    const std::span<const float> near_all(got.near.data() + (h * nw + 2) * L, L);
    CHECK(std::equal(colsum.begin(), colsum.end(), near_all.begin()));
    for (const auto i : samples) {
      reference_row(p, in.q, in.k_wide, qh, i, a);
      std::vector<double> want(d, 0.0);
      for (std::int32_t j = 0; j <= i; ++j) {
        for (std::size_t c = 0; c < d; ++c) {
          want[c] += a[static_cast<std::size_t>(j)] *
                     static_cast<double>(in.v_wide[static_cast<std::size_t>(j) * d + c]);
        }
      }
      INFO("row " << i << " head " << qh);
      const double diag = a[static_cast<std::size_t>(i)];
      CHECK(got.near[h * nw * L + static_cast<std::size_t>(i)] ==
            Approx(i >= p.first_row ? diag : 0.0).epsilon(1e-4).margin(1e-6));
      const auto row = (static_cast<std::size_t>(i) * 2 + h) * d;
      check_close("out row", std::span(got.out).subspan(row, d), want, 1e-4, 1e-5);
      // near_4 at column j = i: rows i .. i + 3 at or past first_row.
      double near4 = 0.0;
      for (std::int32_t r = i; r < std::min(p.length, i + 4); ++r) {
        reference_row(p, in.q, in.k_wide, qh, r, a);
        near4 += r >= p.first_row ? a[static_cast<std::size_t>(i)] : 0.0;
      }
      CHECK(got.near[(h * nw + 1) * L + static_cast<std::size_t>(i)] ==
            Approx(near4).epsilon(1e-4).margin(1e-6));
    }
  }
}

TEST_CASE("prefill_attention rejects bad arguments with errc::invalid_argument",
          "[cuda][prefill]") {
  kc::device_buffer<float> q(4 * 64 * 4);
  kc::device_buffer<__nv_bfloat16> k(4 * 64 * 2);
  kc::device_buffer<__nv_bfloat16> v(4 * 64 * 2);
  kc::device_buffer<float> out(4 * 64 * 4);
  kc::device_buffer<float> stat(4 * 4 * 8);
  kc::prefill_stats good;
  good.score = stat.data();
  good.colsum = stat.data() + 16; // score [4][4], colsum [4][4], near [4][2][4]
  good.near = stat.data() + 32;
  good.windows = {1, 2};
  good.n_windows = 2;
  good.first_row = 0;

  const auto call = [&](std::int32_t length, std::int32_t hq, std::int32_t hkv, std::int32_t d,
                        const kc::prefill_stats* s, const float* qp = nullptr) {
    kc::prefill_attention(qp != nullptr ? qp : q.data(), k.data(), v.data(), out.data(), length,
                          hq, hkv, d, 0.125F, s, nullptr);
  };
  const auto expect_invalid = [](auto&& f) {
    try {
      f();
      FAIL("no exception");
    } catch (const kvsieve::error& e) {
      CHECK(e.code() == errc::invalid_argument);
    }
  };
  // The valid call goes through, so each case below fails for its one reason.
  call(4, 4, 2, 64, &good);
  kc::check(cudaDeviceSynchronize(), "valid call");

  expect_invalid([&] { call(4, 4, 2, 48, &good); });
  expect_invalid([&] { call(4, 4, 2, 512, &good); });
  expect_invalid([&] { call(0, 4, 2, 64, &good); });
  expect_invalid([&] { call(-3, 4, 2, 64, &good); });
  expect_invalid([&] { call(4, 4, 3, 64, &good); });
  expect_invalid([&] { call(4, 4, 0, 64, &good); });
  expect_invalid([&] { call(4, 0, 2, 64, &good); });
  expect_invalid([&] {
    kc::prefill_attention<__nv_bfloat16>(nullptr, k.data(), v.data(), out.data(), 4, 4, 2, 64,
                                         0.125F, &good, nullptr);
  });
  expect_invalid([&] {
    kc::prefill_attention<__nv_bfloat16>(q.data(), nullptr, v.data(), out.data(), 4, 4, 2, 64,
                                         0.125F, &good, nullptr);
  });
  expect_invalid([&] {
    kc::prefill_attention<__nv_bfloat16>(q.data(), k.data(), nullptr, out.data(), 4, 4, 2, 64,
                                         0.125F, &good, nullptr);
  });
  expect_invalid([&] {
    kc::prefill_attention<__nv_bfloat16>(q.data(), k.data(), v.data(), nullptr, 4, 4, 2, 64,
                                         0.125F, &good, nullptr);
  });
  expect_invalid([&] {
    kc::prefill_attention<__nv_bfloat16>(q.data(), k.data(), v.data(), out.data(), 4, 4, 2, 64,
                                         std::nanf(""), &good, nullptr);
  });
  auto s = good;
  s.n_windows = 9;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s = good;
  s.n_windows = -1;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s = good;
  s.windows[1] = 0;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s = good;
  s.windows[0] = -4;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s = good;
  s.first_row = -1;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s = good;
  s.first_row = 5;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s = good;
  s.score = nullptr;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s = good;
  s.colsum = nullptr;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s = good;
  s.near = nullptr;
  expect_invalid([&] { call(4, 4, 2, 64, &s); });
  s.n_windows = 0; // no windows: a null near is fine
  call(4, 4, 2, 64, &s);
  s = good;
  s.first_row = 4; // first_row == L: no recovery rows, allowed
  call(4, 4, 2, 64, &s);
  kc::check(cudaDeviceSynchronize(), "valid calls");
}
