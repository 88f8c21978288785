// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Test bodies written once against the cache API and run on both backends: the host cache in
/// tests/cache/api_test.cpp, the device cache in tests/cache/cuda/adaptive_cache_test.cu. Each
/// makes its caches through `make(geometry, options)`, so the body never names a backend.

#include <cstdint>
#include <functional>
#include <vector>

#include <cache/backend.hpp>
#include <cache/cache_fixture.hpp>
#include <common/catch.hpp>

#include <kvsieve/kvsieve.hpp>

namespace kvsieve::testing {

/// Runs f and checks that it throws kvsieve::error with `code`.
template <class F>
void expect_errc(F&& f, errc code) {
  try {
    std::invoke(std::forward<F>(f));
  } catch (const error& e) {
    INFO(e.what());
    CHECK(e.code() == code);
    return;
  }
  FAIL("no kvsieve::error was thrown");
}

/// Three sequences prefilled with prompts of different lengths, then `steps` batched decodes in a
/// shuffled sequence order on one cache and the same steps as single decodes on another: the
/// same outputs and the same resident positions, step for step, and the same report.
template <class Make>
void batch_equals_single(Make&& make, std::int32_t hq, std::int32_t hkv, std::int32_t d,
                         std::int32_t steps) {
  const store_geometry g{.n_seq = 3, .n_layer = 2, .n_head_kv = hkv, .head_dim = d,
                         .page_size = 16, .max_pages = 2048};
  const cache_options opt{.n_head_q = hq};
  auto batched = make(g, opt);
  auto single = make(g, opt);
  using cache_t = decltype(batched);
  using space = typename cache_t::memory_space;
  using mem = backend<space>;
  const std::array<std::int32_t, 3> lengths{37, 120, 75};
  std::vector<problem> ps;
  for (std::int32_t s = 0; s < 3; ++s) {
    ps.push_back(make_problem(lengths[static_cast<std::size_t>(s)], hq, hkv, d, steps,
                              static_cast<std::uint32_t>(40 + s)));
  }
  const auto hqs = static_cast<std::size_t>(hq);
  const auto hkvs = static_cast<std::size_t>(hkv);
  const auto ds = static_cast<std::size_t>(d);
  const std::int32_t layer = 1;
  for (std::int32_t s = 0; s < 3; ++s) {
    const auto& p = ps[static_cast<std::size_t>(s)];
    const auto L = static_cast<std::size_t>(p.length);
    const auto q = mem::upload(p.q);
    const auto k = mem::upload(p.k);
    const auto v = mem::upload(p.v);
    auto out = mem::zeros(L * hqs * ds);
    for (auto* c : {&batched, &single}) {
      c->prefill(s, layer, cview_of<space, 3>(q, {L, hqs, ds}),
                 cview_of<space, 3>(k, {L, hkvs, ds}), cview_of<space, 3>(v, {L, hkvs, ds}),
                 p.classes, view_of<space, 3>(out, {L, hqs, ds}));
    }
  }
  const std::array<std::int32_t, 3> order{2, 0, 1};
  for (std::size_t step = 0; step < static_cast<std::size_t>(steps); ++step) {
    std::vector<float> q, k, v;
    std::vector<token_class> cls;
    for (const std::int32_t s : order) {
      const auto& p = ps[static_cast<std::size_t>(s)];
      q.insert(q.end(), p.dq[step].begin(), p.dq[step].end());
      k.insert(k.end(), p.dk[step].begin(), p.dk[step].end());
      v.insert(v.end(), p.dv[step].begin(), p.dv[step].end());
      cls.push_back(p.dclasses[step]);
    }
    const auto bq = mem::upload(q);
    const auto bk = mem::upload(k);
    const auto bv = mem::upload(v);
    auto bout = mem::zeros(3 * hqs * ds);
    batched.decode(layer, order, cview_of<space, 3>(bq, {3, hqs, ds}),
                   cview_of<space, 3>(bk, {3, hkvs, ds}), cview_of<space, 3>(bv, {3, hkvs, ds}),
                   cls, view_of<space, 3>(bout, {3, hqs, ds}));
    const auto got = mem::download(bout);
    for (std::size_t b = 0; b < 3; ++b) {
      const std::int32_t s = order[b];
      const auto& p = ps[static_cast<std::size_t>(s)];
      const auto sq = mem::upload(p.dq[step]);
      const auto sk = mem::upload(p.dk[step]);
      const auto sv = mem::upload(p.dv[step]);
      auto sout = mem::zeros(hqs * ds);
      single.decode(s, layer, cview_of<space, 2>(sq, {hqs, ds}),
                    cview_of<space, 2>(sk, {hkvs, ds}), cview_of<space, 2>(sv, {hkvs, ds}),
                    p.dclasses[step], view_of<space, 2>(sout, {hqs, ds}));
      const auto want = mem::download(sout);
      INFO("step " << step << ", sequence " << s);
      for (std::size_t i = 0; i < want.size(); ++i) {
        REQUIRE(got[b * hqs * ds + i] == Approx(want[i]).margin(1e-6));
      }
      for (std::int32_t h = 0; h < hkv; ++h) {
        REQUIRE(mem::positions(batched, {s, layer, h}) == mem::positions(single, {s, layer, h}));
      }
    }
  }
  batched.synchronize();
  single.synchronize();
  for (std::int32_t s = 0; s < 3; ++s) {
    CHECK(batched.length(s, layer) == lengths[static_cast<std::size_t>(s)] + steps);
    CHECK(batched.length(s, 0) == 0);
  }
  const auto rb = batched.report();
  const auto rs = single.report();
  CHECK(rb.heads.size() == static_cast<std::size_t>(3 * hkv));
  CHECK(rb.bytes_resident == rs.bytes_resident);
  CHECK(rb.kv_bytes_kept == rs.kv_bytes_kept);
  CHECK(rb.kv_bytes_full == rs.kv_bytes_full);
  CHECK(rb.mean_kept_fraction == Approx(rs.mean_kept_fraction).epsilon(1e-12));
}

/// The argument errors of the API, with the codes the header documents, and a cache that still
/// works after all of them.
template <class Make>
void argument_errors(Make&& make) {
  const std::int32_t hq = 4;
  const std::int32_t hkv = 2;
  const std::int32_t d = 64;
  const store_geometry g{.n_seq = 2, .n_layer = 1, .n_head_kv = hkv, .head_dim = d,
                         .page_size = 16, .max_pages = 64, .max_context = 48};
  auto cache = make(g, cache_options{.n_head_q = hq});
  using space = typename decltype(cache)::memory_space;
  using mem = backend<space>;
  const auto p = make_problem(40, hq, hkv, d, 10, 3);
  const auto L = static_cast<std::size_t>(p.length);
  const std::size_t hqs = hq;
  const std::size_t hkvs = hkv;
  const std::size_t ds = d;
  const auto q = mem::upload(p.q);
  const auto k = mem::upload(p.k);
  const auto v = mem::upload(p.v);
  auto out = mem::zeros(L * hqs * ds);
  const auto dq = mem::upload(p.dq[0]);
  const auto dk = mem::upload(p.dk[0]);
  const auto dv = mem::upload(p.dv[0]);
  auto dout = mem::zeros(2 * hqs * ds);
  auto prefill = [&](std::int32_t seq, std::size_t rows, std::span<const token_class> cls) {
    cache.prefill(seq, 0, cview_of<space, 3>(q, {rows, hqs, ds}),
                  cview_of<space, 3>(k, {rows, hkvs, ds}), cview_of<space, 3>(v, {rows, hkvs, ds}),
                  cls, view_of<space, 3>(out, {rows, hqs, ds}));
  };
  auto decode = [&](std::int32_t seq) {
    cache.decode(seq, 0, cview_of<space, 2>(dq, {hqs, ds}), cview_of<space, 2>(dk, {hkvs, ds}),
                 cview_of<space, 2>(dv, {hkvs, ds}), token_class::none,
                 view_of<space, 2>(dout, {hqs, ds}));
  };
  const std::span<const token_class> classes(p.classes);
  expect_errc([&] { decode(0); }, errc::bad_state);               // before prefill
  expect_errc([&] { prefill(2, L, classes); }, errc::out_of_range); // no sequence 2
  expect_errc([&] { prefill(0, 0, classes.first(0)); }, errc::invalid_argument); // empty
  expect_errc([&] { prefill(0, L, classes.first(L - 1)); }, errc::shape_mismatch);
  expect_errc([&] {
    cache.prefill(0, 0, cview_of<space, 3>(q, {L, hqs, ds}), cview_of<space, 3>(k, {L, hqs, ds}),
                  cview_of<space, 3>(v, {L, hkvs, ds}), classes,
                  view_of<space, 3>(out, {L, hqs, ds}));
  }, errc::shape_mismatch); // k has n_head_q heads
  std::vector<float> long_prompt(49 * hqs * ds);
  const auto lq = mem::upload(long_prompt);
  auto lout = mem::zeros(long_prompt.size());
  const std::vector<token_class> long_classes(49, token_class::none);
  expect_errc([&] {
    cache.prefill(1, 0, cview_of<space, 3>(lq, {49, hqs, ds}),
                  cview_of<space, 3>(lq, {49, hkvs, ds}), cview_of<space, 3>(lq, {49, hkvs, ds}),
                  long_classes, view_of<space, 3>(lout, {49, hqs, ds}));
  }, errc::out_of_range); // past max_context 48
  CHECK(cache.length(1, 0) == 0);

  prefill(0, L, classes);
  expect_errc([&] { prefill(0, L, classes); }, errc::bad_state); // already prefilled
  expect_errc([&] {
    cache.decode(0, 0, cview_of<space, 2>(dq, {hqs, ds}), cview_of<space, 2>(dk, {hqs, ds}),
                 cview_of<space, 2>(dv, {hkvs, ds}), token_class::none,
                 view_of<space, 2>(dout, {hqs, ds}));
  }, errc::shape_mismatch);
  const std::int32_t twice[2] = {0, 0};
  const token_class two[2] = {token_class::none, token_class::none};
  const auto bq = mem::upload(std::vector<float>(2 * hqs * ds));
  const auto bkv = mem::upload(std::vector<float>(2 * hkvs * ds));
  expect_errc([&] {
    cache.decode(0, twice, cview_of<space, 3>(bq, {2, hqs, ds}),
                 cview_of<space, 3>(bkv, {2, hkvs, ds}), cview_of<space, 3>(bkv, {2, hkvs, ds}),
                 two, view_of<space, 3>(dout, {2, hqs, ds}));
  }, errc::invalid_argument); // a sequence twice
  const std::int32_t both[2] = {0, 1};
  expect_errc([&] {
    cache.decode(0, both, cview_of<space, 3>(bq, {2, hqs, ds}),
                 cview_of<space, 3>(bkv, {2, hkvs, ds}), cview_of<space, 3>(bkv, {2, hkvs, ds}),
                 std::span<const token_class>(two, 1), view_of<space, 3>(dout, {2, hqs, ds}));
  }, errc::shape_mismatch); // one class for two sequences
  expect_errc([&] {
    cache.decode(0, both, cview_of<space, 3>(bq, {2, hqs, ds}),
                 cview_of<space, 3>(bkv, {2, hkvs, ds}), cview_of<space, 3>(bkv, {2, hkvs, ds}),
                 two, view_of<space, 3>(dout, {2, hqs, ds}));
  }, errc::bad_state); // sequence 1 is not prefilled: nothing changed for sequence 0
  cache.synchronize();
  CHECK(cache.length(0, 0) == 40);

  // Steps up to max_context, then out_of_range; the cache stays usable.
  for (std::int32_t t = 40; t < 48; ++t) {
    decode(0);
  }
  cache.synchronize();
  CHECK(cache.length(0, 0) == 48);
  expect_errc([&] { decode(0); }, errc::out_of_range);
  cache.synchronize();
  CHECK(cache.length(0, 0) == 48);
  cache.release(0);
  CHECK(cache.length(0, 0) == 0);
  prefill(0, L, classes);
  decode(0);
  cache.synchronize();
  CHECK(cache.length(0, 0) == 41);
  CHECK(cache.report().heads.size() == static_cast<std::size_t>(hkv));
}

} // namespace kvsieve::testing
