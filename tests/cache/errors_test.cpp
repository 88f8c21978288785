// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// Bad input gives kvsieve::error with the right code and a message naming the problem; the cache
// stays usable afterwards.
#include <common/catch.hpp>
#include <common/expect_error.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;
using kvsieve::testing::expect_error;


struct fixture {
  store_geometry g{.n_seq = 2, .n_layer = 2, .n_head_kv = 2, .head_dim = 4, .page_size = 4};
  adaptive_cache<fastgen_ladder, recovery_profiler> cache{make_fastgen_ladder(),
                                                          recovery_profiler(0.9), g,
                                                          cache_options{.n_head_q = 4}};
  std::vector<float> q = std::vector<float>(5 * 4 * 4, 0.5F);
  std::vector<float> kv = std::vector<float>(5 * 2 * 4, 0.25F);
  std::vector<float> out = std::vector<float>(5 * 4 * 4);
  std::vector<token_class> classes = std::vector<token_class>(5, token_class::none);

  void prefill(std::int32_t seq, std::int32_t layer, std::size_t length = 5) {
    cache.prefill(seq, layer, {q.data(), {length, 4, 4}}, {kv.data(), {length, 2, 4}},
                  {kv.data(), {length, 2, 4}}, std::span(classes).first(length),
                  {out.data(), {length, 4, 4}});
  }
  void decode(std::int32_t seq, std::int32_t layer) {
    cache.decode(seq, layer, {q.data(), {4, 4}}, {kv.data(), {2, 4}}, {kv.data(), {2, 4}},
                 token_class::none, {out.data(), {4, 4}});
  }
};
} // namespace

TEST_CASE("out-of-range hyperparameters are rejected with their name", "[errors]") {
  expect_error([] { recovery_profiler(0.0); }, errc::invalid_argument, "threshold T");
  expect_error([] { recovery_profiler(1.5); }, errc::invalid_argument, "threshold T");
  expect_error([] { recovery_profiler(std::nan("")); }, errc::invalid_argument, "threshold T");
  CHECK_NOTHROW(recovery_profiler(1.0));
  expect_error([] { policies::local(-0.1); }, errc::invalid_argument, "r_l");
  expect_error([] { policies::frequent(1.01); }, errc::invalid_argument, "r_f");
  expect_error([] { (void)make_fastgen_ladder({.local_ratio = 2.0}); }, errc::invalid_argument, "r_l");
  expect_error([] { policies::sinks(-1); }, errc::invalid_argument, "sink");
  expect_error([] { policies::recent(-3); }, errc::invalid_argument, "recent");
}

TEST_CASE("bad geometry and options are rejected", "[errors]") {
  expect_error([] { paged_store<float>({.head_dim = 0}); }, errc::invalid_argument, "head_dim");
  expect_error([] { paged_store<float>({.page_size = -2}); }, errc::invalid_argument,
               "page_size");
  const store_geometry g{.n_head_kv = 2, .head_dim = 4};
  expect_error([&] { adaptive_cache(make_fastgen_ladder(), recovery_profiler(), g, {.n_head_q = 3}); },
               errc::invalid_argument, "multiple of n_head_kv");
  expect_error([&] { adaptive_cache(make_fastgen_ladder(), recovery_profiler(), g, {.n_sinks = -1}); },
               errc::invalid_argument, "n_sinks");
  expect_error([&] { adaptive_cache(make_fastgen_ladder(), recovery_profiler(), g, {.recovery_rows = -1}); },
               errc::invalid_argument, "recovery_rows");
}

TEST_CASE("shape mismatches name the tensor", "[errors]") {
  fixture f;
  expect_error([&] {
    f.cache.prefill(0, 0, {f.q.data(), {5, 4, 4}}, {f.kv.data(), {5, 1, 4}},
                    {f.kv.data(), {5, 2, 4}}, f.classes, {f.out.data(), {5, 4, 4}});
  }, errc::shape_mismatch, "prefill k");
  expect_error([&] {
    f.cache.prefill(0, 0, {f.q.data(), {5, 4, 4}}, {f.kv.data(), {5, 2, 4}},
                    {f.kv.data(), {4, 2, 4}}, f.classes, {f.out.data(), {5, 4, 4}});
  }, errc::shape_mismatch, "prefill v");
  expect_error([&] {
    f.cache.prefill(0, 0, {f.q.data(), {5, 4, 4}}, {f.kv.data(), {5, 2, 4}},
                    {f.kv.data(), {5, 2, 4}}, std::span(f.classes).first(3),
                    {f.out.data(), {5, 4, 4}});
  }, errc::shape_mismatch, "classes");
  expect_error([&] {
    f.cache.prefill(0, 0, {f.q.data(), {5, 4, 4}}, {f.kv.data(), {5, 2, 4}},
                    {f.kv.data(), {5, 2, 4}}, f.classes, {nullptr, {5, 4, 4}});
  }, errc::invalid_argument, "null");
  f.prefill(0, 0);
  expect_error([&] {
    f.cache.decode(0, 0, {f.q.data(), {4, 8}}, {f.kv.data(), {2, 4}}, {f.kv.data(), {2, 4}},
                   token_class::none, {f.out.data(), {4, 4}});
  }, errc::shape_mismatch, "decode q");
  expect_error([&] {
    f.cache.decode(0, 0, {f.q.data(), {4, 4}}, {f.kv.data(), {2, 4}}, {f.kv.data(), {2, 4}},
                   token_class::none, {f.out.data(), {2, 4}});
  }, errc::shape_mismatch, "decode out");
  CHECK(f.cache.length(0, 0) == 5); // nothing changed by the failed calls
}

TEST_CASE("a prompt length mismatch names the tensor that is wrong", "[errors][diagnostics]") {
  fixture f;
  auto message = [&](std::size_t q_rows, std::size_t k_rows, std::size_t out_rows) {
    try {
      f.cache.prefill(0, 0, {f.q.data(), {q_rows, 4, 4}}, {f.kv.data(), {k_rows, 2, 4}},
                      {f.kv.data(), {5, 2, 4}}, f.classes, {f.out.data(), {out_rows, 4, 4}});
    } catch (const kvsieve::error& e) {
      CHECK(e.code() == errc::shape_mismatch);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto q_short = message(4, 5, 5); // q has L - 1 rows: q is blamed, not k
  INFO(q_short);
  CHECK(q_short.find("prefill q has 4 rows, but k, v, out, classes have 5") != std::string::npos);
  CHECK(q_short.find("prefill k") == std::string::npos);
  const auto k_long = message(5, 6, 5);
  INFO(k_long);
  CHECK(k_long.find("prefill k has 6 rows, but q, v, out, classes have 5") != std::string::npos);
  const auto two = message(4, 5, 4);
  INFO(two);
  CHECK(two.find("prefill q has 4 rows, prefill out has 4 rows, but k, v, classes have 5") !=
        std::string::npos);
  CHECK(f.cache.length(0, 0) == 0);
}

TEST_CASE("errors about the caller's arguments cite the caller's file", "[errors][diagnostics]") {
  fixture f;
  // The fixture's calls are in this file too; each message must end in [cache/errors_test.cpp:N].
  expect_error([&] { f.prefill(0, 0, 0); }, errc::invalid_argument, "errors_test.cpp:");
  expect_error([&] { f.decode(0, 0); }, errc::bad_state, "errors_test.cpp:");
  expect_error([&] { f.prefill(3, 0); }, errc::out_of_range, "errors_test.cpp:");
  expect_error([&] {
    f.cache.prefill(0, 0, {f.q.data(), {5, 4, 4}}, {f.kv.data(), {5, 1, 4}},
                    {f.kv.data(), {5, 2, 4}}, f.classes, {f.out.data(), {5, 4, 4}});
  }, errc::shape_mismatch, "errors_test.cpp:");
  expect_error([&] { f.cache.release(7); }, errc::out_of_range, "errors_test.cpp:");
  const store_geometry g{.n_head_kv = 2, .head_dim = 4};
  expect_error([&] { adaptive_cache(make_fastgen_ladder(), recovery_profiler(), g, {.n_sinks = -1}); },
               errc::invalid_argument, "errors_test.cpp:");
  try {
    f.decode(0, 0);
  } catch (const kvsieve::error& e) {
    CHECK(std::string(e.what()).find("adaptive_cache.hpp") == std::string::npos);
  }
}

TEST_CASE("reject_non_finite names the tensor and index of a NaN or infinity", "[errors][diagnostics]") {
  fixture f;
  auto strict = adaptive_cache(make_fastgen_ladder(), recovery_profiler(0.9), f.g,
                               cache_options{.n_head_q = 4, .reject_non_finite = true});
  auto prefill = [&](auto& cache) {
    cache.prefill(0, 0, {f.q.data(), {5, 4, 4}}, {f.kv.data(), {5, 2, 4}},
                  {f.kv.data(), {5, 2, 4}}, f.classes, {f.out.data(), {5, 4, 4}});
  };
  f.kv[(2 * 2 + 1) * 4 + 3] = std::nanf(""); // k and v share the buffer: k is checked first
  expect_error([&] { prefill(strict); }, errc::invalid_argument,
               "prefill k has a non-finite value (nan) at [2, 1, 3]");
  CHECK(strict.length(0, 0) == 0);
  CHECK_NOTHROW(prefill(f.cache)); // off by default
  f.kv[(2 * 2 + 1) * 4 + 3] = 0.25F;
  f.q[4 * 4 + 3 * 4 + 2] = -std::numeric_limits<float>::infinity();
  expect_error([&] { prefill(strict); }, errc::invalid_argument,
               "prefill q has a non-finite value (-inf) at [1, 3, 2]");
  f.q[4 * 4 + 3 * 4 + 2] = 0.5F;
  prefill(strict);
  std::vector<float> v(2 * 4, 0.25F);
  v[5] = std::numeric_limits<float>::infinity();
  expect_error([&] {
    strict.decode(0, 0, {f.q.data(), {4, 4}}, {f.kv.data(), {2, 4}}, {v.data(), {2, 4}},
                  token_class::none, {f.out.data(), {4, 4}});
  }, errc::invalid_argument, "decode v has a non-finite value (inf) at [1, 1]");
  CHECK(strict.length(0, 0) == 5); // nothing changed
}

TEST_CASE("sequence, layer and head indices out of range", "[errors]") {
  fixture f;
  expect_error([&] { f.prefill(2, 0); }, errc::out_of_range, "sequence index 2");
  expect_error([&] { f.prefill(-1, 0); }, errc::out_of_range, "sequence index -1");
  expect_error([&] { f.prefill(0, 2); }, errc::out_of_range, "layer index 2");
  expect_error([&] { f.decode(0, 5); }, errc::out_of_range, "layer index 5");
  expect_error([&] { (void)f.cache.choice({0, 0, 2}); }, errc::out_of_range, "KV head index 2");
  expect_error([&] { f.cache.release(9); }, errc::out_of_range, "sequence index 9");
  expect_error([&] { (void)f.cache.store().meta({0, 0, 0}, 0); }, errc::out_of_range, "slot");
}

TEST_CASE("an empty prompt, decode before prefill and a second prefill are errors", "[errors]") {
  fixture f;
  expect_error([&] { f.prefill(0, 0, 0); }, errc::invalid_argument, "empty prompt");
  expect_error([&] { f.decode(0, 0); }, errc::bad_state, "decode before prefill");
  f.prefill(0, 0);
  expect_error([&] { f.prefill(0, 0); }, errc::bad_state, "already prefilled");
  f.decode(0, 0);
  CHECK(f.cache.length(0, 0) == 6);
  f.cache.release(0);
  CHECK_NOTHROW(f.prefill(0, 0));
}

TEST_CASE("an exhausted page pool is an error that leaves the cache usable", "[errors][memory]") {
  // 2 pages of 4 tokens: a 5-token prompt in 2 full heads needs 4 pages.
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 4,
                         .page_size = 4, .max_pages = 3};
  adaptive_cache cache(ladder<policies::full>(), recovery_profiler(), g);
  std::vector<float> x(5 * 2 * 4, 0.1F), out(5 * 2 * 4);
  std::vector<token_class> cls(5, token_class::none);
  expect_error([&] {
    cache.prefill(0, 0, {x.data(), {5, 2, 4}}, {x.data(), {5, 2, 4}}, {x.data(), {5, 2, 4}}, cls,
                  {out.data(), {5, 2, 4}});
  }, errc::out_of_memory, "page pool exhausted");
  CHECK(cache.store().bytes_resident() == 0); // rolled back
  CHECK(cache.length(0, 0) == 0);
  // A 4-token prompt fits (2 pages); the next token needs 2 more pages but only 1 is left.
  cache.prefill(0, 0, {x.data(), {4, 2, 4}}, {x.data(), {4, 2, 4}}, {x.data(), {4, 2, 4}},
                std::span(cls).first(4), {out.data(), {4, 2, 4}});
  expect_error([&] {
    cache.decode(0, 0, {x.data(), {2, 4}}, {x.data(), {2, 4}}, {x.data(), {2, 4}},
                 token_class::none, {out.data(), {2, 4}});
  }, errc::out_of_memory, "cannot hold one more token");
  CHECK(cache.length(0, 0) == 4);
  CHECK(cache.store().size({0, 0, 0}) == 4);
  CHECK(cache.store().size({0, 0, 1}) == 4);
}

TEST_CASE("token classifier rejects ids outside its vocabulary", "[errors][vocab]") {
  const std::vector<std::int32_t> specials{256};
  const auto c = token_classifier::for_bytes(257, 0, specials);
  expect_error([&] { (void)c(257); }, errc::invalid_argument, "token id 257");
  expect_error([&] { (void)c(-1); }, errc::invalid_argument, "token id -1");
  const std::vector<std::int32_t> bad{300};
  expect_error([&] { (void)token_classifier::for_bytes(257, 0, bad); }, errc::invalid_argument,
               "token id 300");
  expect_error([&] { (void)token_classifier::for_bytes(200, 0, specials); },
               errc::invalid_argument, "do not fit");
}
