// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// adaptive_cache over any host_kv_store: the cache's reference checks pass with paged_store and
// with testing::vector_store (written from the concept alone, paged by page_size or one page per
// head), and on one problem two stores give the same outputs, choices and kept positions.
#include <cache/cache_fixture.hpp>
#include <store/test_store.hpp>

#include <cstring>
#include <tuple>

namespace {
using namespace kvsieve;
using namespace kvsieve::policies;
using kvsieve::testing::check_head_against_reference;
using kvsieve::testing::make_cache;
using kvsieve::testing::make_problem;
using kvsieve::testing::run_cache;
using kvsieve::testing::vector_store;
using kvsieve::testing::views;

using host_stores =
    std::tuple<paged_store<float>, vector_store<float>, vector_store<float, views::whole_head>>;

// Rule only, window + budget, sinks + window, everything: every branch of a decode step.
using step_policies = std::tuple<special_punct, special_punct_frequent_local, streaming, full>;

template <class P>
auto make_policy() -> P {
  if constexpr (std::is_same_v<P, streaming>) {
    return streaming(sinks(2), recent(8));
  } else {
    return P{};
  }
}

template <class Store, class P>
void check_policy(const cache_options& opt, std::int32_t hq, std::int32_t hkv,
                  std::uint32_t seed) {
  const auto p = make_problem(48, hq, hkv, 16, 120, seed);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = hkv, .head_dim = 16,
                         .page_size = 8};
  cache_options o = opt;
  o.n_head_q = hq;
  auto cache = make_cache<Store>(ladder<P>(make_policy<P>()), recovery_profiler(0.95), g, o);
  const auto tr = run_cache(cache, p);
  for (std::int32_t h = 0; h < hkv; ++h) {
    check_head_against_reference(make_policy<P>(), p, tr, h, o);
  }
}

template <class Store, class... P>
void check_policies(const cache_options& opt, std::int32_t hq, std::int32_t hkv,
                    std::uint32_t seed, std::tuple<P...>* /*policies*/) {
  (check_policy<Store, P>(opt, hq, hkv, seed), ...);
}

auto same_bits(const std::vector<float>& a, const std::vector<float>& b) -> bool {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
} // namespace

TEMPLATE_LIST_TEST_CASE("a cache over any host_kv_store equals the naive reference",
                        "[store][cache]", host_stores) {
  step_policies* all = nullptr;
  SECTION("MHA") { check_policies<TestType>({}, 2, 2, 11, all); }
  SECTION("GQA, 4 query heads per KV head") { check_policies<TestType>({}, 8, 2, 12, all); }
  SECTION("sinks and cold-compress") {
    check_policies<TestType>(
        {.n_sinks = 4, .new_token = new_token_mode::drop_before_attention}, 4, 2, 22, all);
  }
  SECTION("worst-case group statistics") {
    check_policies<TestType>({.group = group_reduce::worst}, 8, 2, 24, all);
  }
}

TEMPLATE_LIST_TEST_CASE("FastGen over any host_kv_store: each head's choice replays through the "
                        "reference",
                        "[store][cache][fastgen]", host_stores) {
  for (const double threshold : {0.3, 0.9, 0.99}) {
    const auto p = make_problem(64, 8, 4, 16, 80, 41);
    const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 4, .head_dim = 16,
                           .page_size = 16};
    auto cache = make_cache<TestType>(make_fastgen_ladder(), recovery_profiler(threshold), g,
                                      {.n_head_q = 8});
    const auto tr = run_cache(cache, p);
    for (std::int32_t h = 0; h < 4; ++h) {
      INFO("T = " << threshold);
      cache.ladder().visit(tr.choices[static_cast<std::size_t>(h)], [&](const auto& pol) {
        check_head_against_reference(pol, p, tr, h, cache.options());
      });
    }
  }
}

TEMPLATE_LIST_TEST_CASE("the cache's accounting is the store's: bytes follow the kept tokens, "
                        "release frees them",
                        "[store][cache][memory]", host_stores) {
  const auto a = make_problem(70, 4, 2, 8, 150, 81);
  const auto b = make_problem(33, 4, 2, 8, 40, 82);
  const store_geometry g{.n_seq = 2, .n_layer = 2, .n_head_kv = 2, .head_dim = 8,
                         .page_size = 8};
  auto cache = make_cache<TestType>(make_fastgen_ladder(), recovery_profiler(0.7), g,
                                    {.n_head_q = 4});
  run_cache(cache, a, 0, 1);
  run_cache(cache, b, 1, 0);
  const auto& s = cache.store();
  // Both stores allocate in units of page_size tokens and return a unit once it is empty, so
  // each head holds its kept tokens rounded up to whole units.
  std::size_t units = 0;
  std::size_t kept = 0;
  for (std::int32_t seq = 0; seq < 2; ++seq) {
    for (std::int32_t layer = 0; layer < 2; ++layer) {
      for (std::int32_t h = 0; h < 2; ++h) {
        const auto n = static_cast<std::size_t>(s.size({seq, layer, h}));
        units += (n + 7) / 8;
        kept += n;
      }
    }
  }
  CHECK(kept > 0);
  CHECK(s.bytes_resident() == units * s.page_bytes());
  const auto r = cache.report();
  CHECK(r.bytes_resident == s.bytes_resident());
  CHECK(r.kv_bytes_kept == kept * 2 * 8 * sizeof(float));
  CHECK(r.kv_bytes_full == 2 * (70 + 150 + 33 + 40) * 2 * 8 * sizeof(float));
  cache.release(1);
  CHECK(s.size({1, 0, 0}) == 0);
  CHECK(s.bytes_resident() < units * s.page_bytes());
  cache.release(0);
  CHECK(s.bytes_resident() == 0);
}

TEMPLATE_LIST_TEST_CASE("an exhausted store fails a step before it changes anything",
                        "[store][cache][memory]", host_stores) {
  // 3 units of 4 tokens: a 4-token prompt in 2 full heads takes 2; the next token needs 2 more.
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 4,
                         .page_size = 4, .max_pages = 3};
  auto cache = make_cache<TestType>(ladder<full>(), recovery_profiler(), g);
  std::vector<float> x(5 * 2 * 4, 0.1F), out(5 * 2 * 4);
  std::vector<token_class> cls(5, token_class::none);
  CHECK_THROWS_AS(cache.prefill(0, 0, {x.data(), {5, 2, 4}}, {x.data(), {5, 2, 4}},
                                {x.data(), {5, 2, 4}}, cls, {out.data(), {5, 2, 4}}),
                  kvsieve::error);
  CHECK(cache.store().bytes_resident() == 0); // rolled back
  cache.prefill(0, 0, {x.data(), {4, 2, 4}}, {x.data(), {4, 2, 4}}, {x.data(), {4, 2, 4}},
                std::span(cls).first(4), {out.data(), {4, 2, 4}});
  const auto bytes = cache.store().bytes_resident();
  try {
    cache.decode(0, 0, {x.data(), {2, 4}}, {x.data(), {2, 4}}, {x.data(), {2, 4}},
                 token_class::none, {out.data(), {2, 4}});
    FAIL("decode should have run out of memory");
  } catch (const kvsieve::error& e) {
    CHECK(e.code() == errc::out_of_memory);
  }
  CHECK(cache.length(0, 0) == 4);
  CHECK(cache.store().size({0, 0, 0}) == 4);
  CHECK(cache.store().size({0, 0, 1}) == 4);
  CHECK(cache.store().bytes_resident() == bytes);
}

TEST_CASE("paged_store and vector_store give the same outputs, choices and kept positions",
          "[store][cache]") {
  const auto p = make_problem(90, 8, 4, 16, 200, 7);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 4, .head_dim = 16,
                         .page_size = 16};
  for (const double threshold : {0.5, 0.9, 0.97}) {
    INFO("T = " << threshold);
    auto paged = make_cache<paged_store<float>>(make_fastgen_ladder(),
                                                recovery_profiler(threshold), g, {.n_head_q = 8});
    auto vec = make_cache<vector_store<float>>(make_fastgen_ladder(),
                                               recovery_profiler(threshold), g, {.n_head_q = 8});
    auto one = make_cache<vector_store<float, views::whole_head>>(
        make_fastgen_ladder(), recovery_profiler(threshold), g, {.n_head_q = 8});
    const auto a = run_cache(paged, p);
    const auto b = run_cache(vec, p);
    const auto c = run_cache(one, p);
    // Same pages in the same order: the same sums in the same order, bit for bit.
    CHECK(same_bits(a.prefill_out, b.prefill_out));
    REQUIRE(a.outs.size() == b.outs.size());
    for (std::size_t s = 0; s < a.outs.size(); ++s) {
      REQUIRE(same_bits(a.outs[s], b.outs[s]));
    }
    CHECK(a.choices == b.choices);
    CHECK(a.pos == b.pos);
    // One page per head moves the online softmax's rescaling points: equal to rounding, and the
    // same tokens kept.
    CHECK(same_bits(a.prefill_out, c.prefill_out)); // prefill does not read the store
    CHECK(a.choices == c.choices);
    CHECK(a.pos == c.pos);
    for (std::size_t s = 0; s < a.outs.size(); ++s) {
      for (std::size_t i = 0; i < a.outs[s].size(); ++i) {
        REQUIRE(c.outs[s][i] == Approx(a.outs[s][i]).margin(1e-6));
      }
    }
    const auto ra = paged.report();
    const auto rb = vec.report();
    CHECK(ra.policy_counts == rb.policy_counts);
    CHECK(ra.kv_bytes_kept == rb.kv_bytes_kept);
    CHECK(ra.kv_bytes_full == rb.kv_bytes_full);
  }
}

TEST_CASE("a threaded cache over vector_store gives the serial results bit for bit",
          "[store][cache][threads]") {
  // Large enough to cross parallel_min_macs in prefill and decode (see threads_test.cpp): the
  // attention of distinct heads then reads the store's const members concurrently.
  const auto p = make_problem(400, 8, 4, 64, 16, 77);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 4, .head_dim = 64,
                         .page_size = 16};
  auto serial = make_cache<vector_store<float>>(make_fastgen_ladder(), recovery_profiler(0.9), g,
                                                {.n_head_q = 8});
  const auto a = run_cache(serial, p);
  thread_pool pool(3);
  auto threaded = make_cache<vector_store<float>>(make_fastgen_ladder(), recovery_profiler(0.9),
                                                  g, {.n_head_q = 8, .threads = &pool});
  const auto b = run_cache(threaded, p);
  CHECK(same_bits(a.prefill_out, b.prefill_out));
  REQUIRE(a.outs.size() == b.outs.size());
  for (std::size_t s = 0; s < a.outs.size(); ++s) {
    CHECK(same_bits(a.outs[s], b.outs[s]));
  }
  CHECK(a.pos == b.pos);
  CHECK(a.choices == b.choices);
}
