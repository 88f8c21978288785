// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// adaptive_cache against brute force: prefill outputs, kept sets, every decode step's output
// and kept set for every policy and option, and the invariants of long random decodes.
#include <cache/cache_fixture.hpp>

#include <algorithm>
#include <tuple>

namespace {
using namespace kvsieve;
using namespace kvsieve::policies;
using kvsieve::testing::check_head_against_reference;
using kvsieve::testing::make_problem;
using kvsieve::testing::run_cache;

template <class P>
auto make_policy() -> P {
  if constexpr (std::is_same_v<P, streaming>) {
    return streaming(sinks(2), recent(8));
  } else if constexpr (std::is_same_v<P, recent>) {
    return recent(8);
  } else {
    return P{};
  }
}

using all_policies = std::tuple<special, punctuation, special_punct, special_punct_frequent,
                                special_punct_frequent_local, full, local, frequent,
                                local_frequent, streaming, recent>;

using option_policies =
    std::tuple<special_punct, special_punct_frequent_local, frequent, local_frequent>;

template <class P>
void check_single_policy(const cache_options& opt, std::int32_t hq, std::int32_t hkv,
                         std::uint32_t seed) {
  const auto p = make_problem(48, hq, hkv, 16, 120, seed);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = hkv, .head_dim = 16,
                         .page_size = 8};
  cache_options o = opt;
  o.n_head_q = hq;
  adaptive_cache cache(ladder<P>(make_policy<P>()), recovery_profiler(0.95), g, o);
  const auto tr = run_cache(cache, p);
  for (std::int32_t h = 0; h < hkv; ++h) {
    check_head_against_reference(make_policy<P>(), p, tr, h, o);
  }
}
} // namespace

TEMPLATE_LIST_TEST_CASE("every policy's cache equals the naive reference at prefill and every decode step",
                        "[cache][policy]", all_policies) {
  SECTION("MHA") { check_single_policy<TestType>({}, 2, 2, 11); }
  SECTION("GQA, 4 query heads per KV head") { check_single_policy<TestType>({}, 8, 2, 12); }
  SECTION("MQA") { check_single_policy<TestType>({}, 4, 1, 13); }
}

TEMPLATE_LIST_TEST_CASE("every option of fastgen-spec section 6 matches the reference",
                        "[cache][options]", option_policies) {
  SECTION("4 attention sinks") { check_single_policy<TestType>({.n_sinks = 4}, 4, 2, 21); }
  SECTION("new token dropped before attention (cold-compress)") {
    check_single_policy<TestType>({.new_token = new_token_mode::drop_before_attention}, 4, 2,
                                  22);
  }
  SECTION("generated classes frozen at prefill") {
    check_single_policy<TestType>({.generated = generated_class_mode::frozen}, 4, 2, 23);
  }
  SECTION("worst-case group statistics") {
    check_single_policy<TestType>({.group = group_reduce::worst}, 8, 2, 24);
  }
}

TEST_CASE("window and budget fixed at the prompt length, and mean-normalised scores",
          "[cache][options]") {
  const auto p = make_problem(40, 4, 2, 16, 100, 31);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 16,
                         .page_size = 4};
  const special_punct_frequent_local pol({}, {},
                                         frequent(0.25, length_base::prompt, score_mode::mean),
                                         local(0.2, length_base::prompt));
  adaptive_cache cache(ladder<special_punct_frequent_local>(pol), recovery_profiler(0.9), g,
                       {.n_head_q = 4});
  const auto tr = run_cache(cache, p);
  for (std::int32_t h = 0; h < 2; ++h) {
    check_head_against_reference(pol, p, tr, h, cache.options());
  }
  // With both parts fixed at L = 40, the budget stays 10 and the window 8 through generation.
  const auto kept_last = tr.pos.back()[0];
  const std::int32_t t = 40 + 100;
  CHECK(std::count_if(kept_last.begin(), kept_last.end(), [&](std::int32_t x) { return x >= t - 8; }) == 8);
}

TEST_CASE("FastGen ladder: each head's chosen policy replays exactly through the reference",
          "[cache][fastgen]") {
  for (const double threshold : {0.3, 0.6, 0.9, 0.99}) {
    const auto p = make_problem(64, 8, 4, 16, 80, 41);
    const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 4, .head_dim = 16,
                           .page_size = 16};
    adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(threshold), g,
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

TEST_CASE("prefill output equals brute-force causal attention over the whole prompt",
          "[cache][prefill]") {
  const auto p = make_problem(37, 6, 2, 8, 0, 51);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 8};
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(0.9), g, {.n_head_q = 6});
  const auto tr = run_cache(cache, p);
  const double scale = 1.0 / std::sqrt(8.0);
  for (std::int32_t qh = 0; qh < 6; ++qh) {
    const auto a = reference::attention_matrix(p.q, p.k, 37, 6, 2, 8, qh, qh / 3, scale);
    for (std::size_t i = 0; i < 37; ++i) {
      for (std::size_t c = 0; c < 8; ++c) {
        double expect = 0.0;
        for (std::size_t j = 0; j <= i; ++j) {
          expect += a[i * 37 + j] * p.v[(j * 2 + static_cast<std::size_t>(qh / 3)) * 8 + c];
        }
        REQUIRE(tr.prefill_out[(i * 6 + static_cast<std::size_t>(qh)) * 8 + c] ==
                Approx(expect).margin(1e-5));
      }
    }
  }
}

TEST_CASE("local keeps exactly its window: a hand-checked case", "[cache][local]") {
  // L = 10, r_l = 0.3: w = 3 keeps {7, 8, 9}. Step t = 11: w = ceil(3.3) = 4 keeps {7..10};
  // t = 12: w = ceil(3.6) = 4 keeps {8..11}; t = 14: w = ceil(4.2) = 5 keeps {9..13}.
  const auto p = make_problem(10, 1, 1, 4, 4, 61);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 1, .head_dim = 4,
                         .page_size = 2};
  adaptive_cache cache(ladder<local>(local(0.3)), recovery_profiler(0.9), g);
  const auto tr = run_cache(cache, p);
  using v = std::vector<std::int32_t>;
  CHECK(tr.pos[0][0] == v{7, 8, 9});
  CHECK(tr.pos[1][0] == v{7, 8, 9, 10});
  CHECK(tr.pos[2][0] == v{8, 9, 10, 11});
  CHECK(tr.pos[3][0] == v{9, 10, 11, 12});
  CHECK(tr.pos[4][0] == v{9, 10, 11, 12, 13});
}

TEST_CASE("full ladder: every decode output equals plain attention over all tokens",
          "[cache][full]") {
  const auto p = make_problem(20, 4, 2, 8, 30, 71);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 8,
                         .page_size = 3};
  adaptive_cache cache(ladder<full>(), recovery_profiler(0.95), g, {.n_head_q = 4});
  const auto tr = run_cache(cache, p);
  for (std::size_t s = 0; s < 30; ++s) {
    CHECK(tr.pos[s + 1][0].size() == 21 + s);
  }
  const auto r = cache.report();
  CHECK(r.saved_fraction() == 0.0);
  CHECK(r.kv_bytes_kept == r.kv_bytes_full);
  CHECK(r.policy_counts.front().second == 2);
}

TEST_CASE("long random decodes keep the policy invariants and the page accounting exact",
          "[cache][invariants]") {
  const std::int32_t L = 96, steps = 600, hkv = 2;
  const auto p = make_problem(L, 4, hkv, 8, steps, 81);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = hkv, .head_dim = 8,
                         .page_size = 8};
  const special_punct_frequent_local pol;
  adaptive_cache cache(ladder<special_punct_frequent_local>(pol), recovery_profiler(0.5), g,
                       {.n_head_q = 4});
  std::vector<float> out(4 * 8);
  std::vector<float> prefill_out(static_cast<std::size_t>(L) * 4 * 8);
  cache.prefill(0, 0, {p.q.data(), {96, 4, 8}}, {p.k.data(), {96, 2, 8}},
                {p.v.data(), {96, 2, 8}}, p.classes, {prefill_out.data(), {96, 4, 8}});
  std::vector<token_class> seen = p.classes;
  // budget after prefill: ceil(0.3 L) of the unclaimed tokens behind the window
  std::int32_t window_begin = L - local(0.3).window({L, L});
  std::int32_t unclaimed = 0;
  for (std::int32_t j = 0; j < window_begin; ++j) {
    unclaimed += p.classes[static_cast<std::size_t>(j)] == token_class::none ? 1 : 0;
  }
  std::vector<std::int32_t> expected_members(
      hkv, std::min(unclaimed, frequent(0.3).budget({L, L})));
  for (std::int32_t s = 0; s < steps; ++s) {
    const auto si = static_cast<std::size_t>(s);
    cache.decode(0, 0, {p.dq[si].data(), {4, 8}}, {p.dk[si].data(), {2, 8}},
                 {p.dv[si].data(), {2, 8}}, p.dclasses[si], {out.data(), {4, 8}});
    seen.push_back(p.dclasses[si]);
    const std::int32_t t = L + s + 1;
    const std::int32_t w = local(0.3).window({t, L});
    const std::int32_t k = frequent(0.3).budget({t, L});
    std::int32_t joiners = 0;
    for (std::int32_t j = window_begin; j < t - w; ++j) {
      joiners += seen[static_cast<std::size_t>(j)] == token_class::none ? 1 : 0;
    }
    window_begin = std::max(window_begin, t - w);
    for (auto& m : expected_members) {
      m = std::min(k, m + joiners);
    }
    std::size_t pages = 0;
    for (std::int32_t h = 0; h < hkv; ++h) {
      const head_id id{0, 0, h};
      const auto pos = reference::store_positions(cache.store(), id);
      // special and punctuation tokens are never lost
      for (std::int32_t j = 0; j < t; ++j) {
        if (seen[static_cast<std::size_t>(j)] != token_class::none) {
          REQUIRE(std::binary_search(pos.begin(), pos.end(), j));
        }
      }
      // the window holds exactly the last w positions
      for (std::int32_t j = t - w; j < t; ++j) {
        REQUIRE(std::binary_search(pos.begin(), pos.end(), j));
      }
      // the budget holds what fastgen-spec section 2 predicts: it takes the tokens that leave
      // the window unclaimed, and only overflow beyond k_t is evicted
      std::int32_t members = 0;
      for (std::int32_t slot = 0; slot < cache.store().size(id); ++slot) {
        const auto m = cache.store().meta(id, slot);
        if (m.reason == keep_reason::budget) {
          ++members;
          REQUIRE(m.position < t - w);
          REQUIRE(m.cls == token_class::none);
        }
      }
      REQUIRE(members == expected_members[static_cast<std::size_t>(h)]);
      REQUIRE(static_cast<std::int32_t>(pos.size()) == cache.store().size(id));
      pages += static_cast<std::size_t>((cache.store().size(id) + 7) / 8);
      REQUIRE(cache.store().page_count(id) == (cache.store().size(id) + 7) / 8);
    }
    // bytes resident: the kept tokens plus at most one partial page per head
    REQUIRE(cache.store().pages_in_use() == pages);
    REQUIRE(cache.store().bytes_resident() == pages * cache.store().page_bytes());
  }
}

TEST_CASE("several sequences and layers are independent and release returns their memory",
          "[cache][batch]") {
  const auto a = make_problem(30, 2, 2, 8, 20, 91);
  const auto b = make_problem(45, 2, 2, 8, 25, 92);
  const store_geometry g{.n_seq = 2, .n_layer = 2, .n_head_kv = 2, .head_dim = 8,
                         .page_size = 4};
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(0.9), g);
  adaptive_cache solo(make_fastgen_ladder(), recovery_profiler(0.9), g);
  const auto ta = run_cache(cache, a, 0, 1);
  const auto tb = run_cache(cache, b, 1, 0);
  const auto sa = run_cache(solo, a, 0, 1);
  CHECK(ta.pos == sa.pos);
  CHECK(ta.outs == sa.outs);
  CHECK(cache.length(0, 1) == 50);
  CHECK(cache.length(1, 0) == 70);
  CHECK(cache.length(0, 0) == 0);
  const auto before = cache.store().bytes_resident();
  cache.release(1);
  CHECK(cache.store().bytes_resident() == solo.store().bytes_resident());
  CHECK(cache.store().bytes_resident() < before);
  cache.release(0);
  CHECK(cache.store().bytes_resident() == 0);
  CHECK(cache.report().heads.empty());
  // released sequences can be prefilled again
  const auto again = run_cache(cache, a, 0, 1);
  CHECK(again.pos == sa.pos);
}

TEST_CASE("the report counts policies and bytes consistently", "[cache][report]") {
  const auto p = make_problem(64, 4, 2, 8, 10, 101);
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 8,
                         .page_size = 4};
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(0.8), g, {.n_head_q = 4});
  run_cache(cache, p);
  const auto r = cache.report();
  REQUIRE(r.heads.size() == 2);
  std::int32_t counted = 0;
  std::size_t kept = 0;
  for (const auto& [name, n] : r.policy_counts) {
    counted += n;
  }
  for (const auto& h : r.heads) {
    CHECK(h.length == 74);
    CHECK(h.policy == fastgen_ladder::name(static_cast<std::size_t>(h.choice)));
    CHECK(h.recovered >= 0.8 - 1e-9);
    REQUIRE(h.candidates.size() == fastgen_ladder::size);
    CHECK(h.candidates[static_cast<std::size_t>(h.choice)] == Approx(h.recovered));
    CHECK(h.candidates.back() == Approx(1.0)); // full keeps everything
    for (std::size_t i = 0; i < static_cast<std::size_t>(h.choice); ++i) {
      CHECK(h.candidates[i] < 0.8 + 1e-6); // the first candidate in ladder order that reaches T
    }
    kept += static_cast<std::size_t>(h.kept);
  }
  CHECK(counted == 2);
  CHECK(r.kv_bytes_kept == kept * 2 * 8 * sizeof(float));
  CHECK(r.kv_bytes_full == 2 * 74 * 2 * 8 * sizeof(float));
  CHECK(r.bytes_full == 2 * ((74 + 3) / 4) * cache.store().page_bytes());
  CHECK(r.bytes_resident == cache.store().bytes_resident());
  CHECK(r.mean_kept_fraction > 0.0);
  CHECK(r.mean_kept_fraction <= 1.0);
  CHECK(r.profile_seconds >= 0.0);
}
