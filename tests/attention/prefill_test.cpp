// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// causal_attention against the materialised L x L attention in double (tests/reference): every
// row's probabilities as handed to the callback, in row order, and the outputs, for strided
// grouped layouts and the specialised head sizes, on every SIMD target this CPU runs.
#include <common/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include <attention/simd_targets.hpp>
#include <reference/brute_force.hpp>

#include <kvsieve/attention/prefill.hpp>

namespace {
using namespace kvsieve;

void check_prefill(std::int32_t length, std::int32_t hq, std::int32_t hkv, std::int32_t d,
                   std::uint32_t seed) {
  std::mt19937 rng(seed);
  const auto L = static_cast<std::size_t>(length);
  const auto du = static_cast<std::size_t>(d);
  const auto q = reference::random_vector(L * static_cast<std::size_t>(hq) * du, rng);
  const auto k = reference::random_vector(L * static_cast<std::size_t>(hkv) * du, rng);
  const auto v = reference::random_vector(L * static_cast<std::size_t>(hkv) * du, rng);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<float> out(q.size(), -3.0F), p;
  const std::int32_t group = hq / hkv;
  for (std::int32_t qh = 0; qh < hq; ++qh) {
    const std::int32_t kh = qh / group;
    const auto a = reference::attention_matrix(q, k, length, hq, hkv, d, qh, kh, scale);
    std::int32_t next_row = 0;
    std::size_t bad_p = 0;
    const auto qs = static_cast<std::size_t>(hq) * du;
    const auto ks = static_cast<std::size_t>(hkv) * du;
    const auto qo = static_cast<std::size_t>(qh) * du;
    const auto ko = static_cast<std::size_t>(kh) * du;
    causal_attention({q.data() + qo, qs}, {k.data() + ko, ks}, {v.data() + ko, ks},
                     out.data() + qo, qs, length, d, static_cast<float>(scale), p,
                     [&](std::int32_t i, std::span<const float> row) {
                       CHECK(i == next_row++);
                       CHECK(row.size() == static_cast<std::size_t>(i) + 1);
                       for (std::size_t j = 0; j < row.size(); ++j) {
                         const double e = a[static_cast<std::size_t>(i) * L + j];
                         bad_p += std::abs(row[j] - e) <= 1e-5 * e + 1e-7 ? 0 : 1;
                       }
                     });
    INFO("L " << length << ", d " << d << ", query head " << qh);
    CHECK(next_row == length);
    CHECK(bad_p == 0);
    for (std::size_t i = 0; i < L; ++i) {
      for (std::size_t c = 0; c < du; ++c) {
        double expect = 0.0;
        for (std::size_t j = 0; j <= i; ++j) {
          expect += a[i * L + j] * static_cast<double>(v[j * ks + ko + c]);
        }
        REQUIRE(out[i * qs + qo + c] == Approx(expect).margin(2e-5));
      }
    }
  }
}
} // namespace

TEST_CASE("causal_attention matches the materialised attention row by row", "[attention][prefill]") {
  testing::for_each_simd_target([] {
    std::uint32_t seed = 7;
    for (const std::int32_t d : {64, 128, 8, 5, 36}) {
      check_prefill(1, 1, 1, d, ++seed);
      check_prefill(43, 4, 2, d, ++seed);
    }
    check_prefill(130, 2, 1, 64, 3);
  });
}
