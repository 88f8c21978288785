// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// attend_paged against a double-precision reference over the values as stored (float, bfloat16,
// half), for the specialised head sizes (64, 128) and others, groups of 1 to 12 query heads
// (every head-block combination), partial pages, both group reductions, on every SIMD target
// this CPU runs; and the element conversions of the kernels against load_float for every half
// and many bfloat16 bit patterns, inf and NaN included.
#include <common/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <attention/simd_targets.hpp>

#include <kvsieve/attention/decode.hpp>
#include <kvsieve/store/paged_store.hpp>

namespace {
using namespace kvsieve;

struct decode_reference {
  std::vector<double> out;  // [group, d]
  std::vector<double> prob; // [n]
};

// The stored K/V rows read back through load_float, attention in double.
template <class T>
auto reference_decode(const paged_store<T>& store, head_id h, const std::vector<float>& q,
                      std::size_t group, double scale, group_reduce reduce) -> decode_reference {
  const auto d = static_cast<std::size_t>(store.geometry().head_dim);
  std::vector<std::vector<double>> k, v;
  for (std::int32_t p = 0; p < store.page_count(h); ++p) {
    const auto page = store.page(h, p);
    for (std::int32_t t = 0; t < page.count; ++t) {
      std::vector<double> kr(d), vr(d);
      for (std::size_t c = 0; c < d; ++c) {
        kr[c] = load_float(page.keys[static_cast<std::size_t>(t) * d + c]);
        vr[c] = load_float(page.values[static_cast<std::size_t>(t) * d + c]);
      }
      k.push_back(kr);
      v.push_back(vr);
    }
  }
  const std::size_t n = k.size();
  decode_reference r{std::vector<double>(group * d, 0.0), std::vector<double>(n, 0.0)};
  for (std::size_t g = 0; g < group; ++g) {
    std::vector<double> a(n);
    double m = -1e300;
    for (std::size_t j = 0; j < n; ++j) {
      double dot = 0.0;
      for (std::size_t c = 0; c < d; ++c) {
        dot += static_cast<double>(q[g * d + c]) * k[j][c];
      }
      a[j] = dot * scale;
      m = std::max(m, a[j]);
    }
    double sum = 0.0;
    for (auto& x : a) {
      x = std::exp(x - m);
      sum += x;
    }
    for (std::size_t j = 0; j < n; ++j) {
      a[j] /= sum;
      r.prob[j] = reduce == group_reduce::mean ? r.prob[j] + a[j] / static_cast<double>(group)
                                               : std::max(r.prob[j], a[j]);
      for (std::size_t c = 0; c < d; ++c) {
        r.out[g * d + c] += a[j] * v[j][c];
      }
    }
  }
  return r;
}

template <class T>
void check_decode(std::int32_t d, std::int32_t group, std::int32_t n, std::int32_t page_size,
                  group_reduce reduce, std::uint32_t seed) {
  const store_geometry geo{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = d,
                           .page_size = page_size};
  paged_store<T> store(geo);
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  const auto du = static_cast<std::size_t>(d);
  const head_id h{0, 0, 1};
  std::vector<float> k(du), v(du);
  for (std::int32_t j = 0; j < n; ++j) {
    for (std::size_t c = 0; c < du; ++c) {
      k[c] = nd(rng);
      v[c] = nd(rng);
    }
    store.append(h, k, v, {j, 0.0F, token_class::none, keep_reason::window});
  }
  const auto g = static_cast<std::size_t>(group);
  std::vector<float> q(g * du);
  for (auto& x : q) {
    x = nd(rng);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const auto ref = reference_decode(store, h, q, g, scale, reduce);
  decode_scratch scratch;
  std::vector<float> out(g * du, -7.0F), prob(static_cast<std::size_t>(n), -7.0F);
  attend_paged(store, h, q.data(), out.data(), group, static_cast<float>(scale), reduce, scratch,
               std::span<float>(prob));
  INFO("d " << d << ", group " << group << ", n " << n << ", page " << page_size);
  for (std::size_t i = 0; i < out.size(); ++i) {
    REQUIRE(out[i] == Approx(ref.out[i]).margin(2e-5));
  }
  double sum = 0.0;
  for (std::size_t j = 0; j < prob.size(); ++j) {
    REQUIRE(prob[j] == Approx(ref.prob[j]).epsilon(1e-4).margin(1e-7));
    sum += prob[j];
  }
  if (reduce == group_reduce::mean) {
    CHECK(sum == Approx(1.0).epsilon(1e-5));
  }
}

using element_types = std::tuple<float, bfloat16, half>;

} // namespace

TEMPLATE_LIST_TEST_CASE("attend_paged matches double-precision attention over the stored values",
                        "[attention][decode]", element_types) {
  testing::for_each_simd_target([] {
    std::uint32_t seed = 1;
    for (const std::int32_t d : {64, 128, 8, 13, 80}) {
      for (const std::int32_t group : {1, 2, 3, 4, 7, 8, 12}) {
        check_decode<TestType>(d, group, 1, 16, group_reduce::mean, ++seed);
        check_decode<TestType>(d, group, 45, 16, group_reduce::mean, ++seed);
        check_decode<TestType>(d, group, 45, 16, group_reduce::worst, ++seed);
      }
    }
    check_decode<TestType>(128, 4, 300, 32, group_reduce::mean, 99);
    check_decode<TestType>(64, 1, 257, 1, group_reduce::worst, 98); // one token per page
  });
}

TEST_CASE("attend_paged gives zeros for an empty head", "[attention][decode]") {
  paged_store<float> store({.n_seq = 1, .n_layer = 1, .n_head_kv = 1, .head_dim = 8});
  decode_scratch scratch;
  std::vector<float> q(16, 1.0F), out(16, 5.0F);
  attend_paged(store, {0, 0, 0}, q.data(), out.data(), 2, 0.5F, group_reduce::mean, scratch, {});
  CHECK(std::all_of(out.begin(), out.end(), [](float x) { return x == 0.0F; }));
}

namespace {
// With one token the probability is exactly 1, so the output is the stored value row as the
// kernel converted it: every element must equal load_float of the stored bits.
template <class T>
void check_conversions(const std::vector<std::uint16_t>& patterns) {
  constexpr std::int32_t d = 64; // a specialised width; the generic path is covered above
  const auto rows = (patterns.size() + d - 1) / d;
  const store_geometry geo{.n_seq = 1, .n_layer = 1,
                           .n_head_kv = static_cast<std::int32_t>(rows), .head_dim = d};
  paged_store<T> store(geo);
  std::vector<float> zero(d, 0.0F), v(d);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < d; ++c) {
      const std::size_t i = std::min(r * d + c, patterns.size() - 1);
      v[c] = load_float(T{patterns[i]}); // exact: store_as gives the same bits back
    }
    store.append({0, 0, static_cast<std::int32_t>(r)}, zero, v,
                 {0, 0.0F, token_class::none, keep_reason::window});
  }
  decode_scratch scratch;
  std::vector<float> q(d, 0.0F), out(d);
  float prob = 0.0F;
  std::size_t wrong = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const head_id h{0, 0, static_cast<std::int32_t>(r)};
    attend_paged(store, h, q.data(), out.data(), 1, 1.0F, group_reduce::mean, scratch,
                 std::span<float>(&prob, 1));
    const auto page = store.page(h, 0);
    for (std::size_t c = 0; c < d; ++c) {
      const float expect = load_float(page.values[c]);
      const bool same = std::isnan(expect) ? std::isnan(out[c]) : out[c] == expect;
      wrong += same ? 0 : 1;
    }
  }
  CHECK(prob == 1.0F);
  CHECK(wrong == 0);
}
} // namespace

TEST_CASE("the kernels convert every half exactly, subnormals, inf and NaN included",
          "[attention][decode][numeric]") {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) {
    all[i] = static_cast<std::uint16_t>(i);
  }
  testing::for_each_simd_target([&] { check_conversions<half>(all); });
}

TEST_CASE("the kernels convert bfloat16 exactly", "[attention][decode][numeric]") {
  std::vector<std::uint16_t> some;
  for (std::uint32_t i = 0; i < 65536; i += 7) {
    some.push_back(static_cast<std::uint16_t>(i));
  }
  const std::vector<std::uint16_t> specials{0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc1, 0x0001, 0x807f};
  some.insert(some.end(), specials.begin(), specials.end()); // zeros, infinities, NaN, subnormals
  testing::for_each_simd_target([&] { check_conversions<bfloat16>(some); });
}
