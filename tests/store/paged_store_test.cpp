// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// paged_store: dense slots, swap-with-last erase, pages returned to the pool, exact bytes, typed
// storage, and out-of-memory that leaves the store unchanged.
#include <common/catch.hpp>

#include <map>
#include <random>
#include <vector>

#include <kvsieve/kvsieve.hpp>

namespace {
using namespace kvsieve;

template <class T>
auto row_of(const paged_store<T>& s, head_id h, std::int32_t slot, bool value) -> std::vector<float> {
  const auto& g = s.geometry();
  const auto page = s.page(h, slot / g.page_size);
  const T* p = (value ? page.values : page.keys) +
               static_cast<std::size_t>(slot % g.page_size) * static_cast<std::size_t>(g.head_dim);
  std::vector<float> out;
  for (std::int32_t c = 0; c < g.head_dim; ++c) {
    out.push_back(load_float(p[c]));
  }
  return out;
}
} // namespace

TEMPLATE_TEST_CASE("random appends and erases match a map model and free pages exactly",
                   "[store]", float, bfloat16, half) {
  const store_geometry g{.n_seq = 2, .n_layer = 2, .n_head_kv = 3, .head_dim = 5, .page_size = 4};
  paged_store<TestType> s(g);
  std::mt19937 rng(3);
  // model: per head, position -> key row (values are key + 1)
  std::map<std::size_t, std::map<std::int32_t, std::vector<float>>> model;
  std::uniform_int_distribution<int> head_pick(0, 11);
  std::int32_t next_pos = 0;
  for (int it = 0; it < 3000; ++it) {
    const int hi = head_pick(rng);
    const head_id h{hi / 6, (hi / 3) % 2, hi % 3};
    auto& m = model[s.index(h)];
    if (m.empty() || std::bernoulli_distribution(0.6)(rng)) {
      std::vector<float> k(5), v(5);
      for (int c = 0; c < 5; ++c) {
        // small integers are exact in every storage type
        k[static_cast<std::size_t>(c)] = static_cast<float>(next_pos % 97 + c);
        v[static_cast<std::size_t>(c)] = k[static_cast<std::size_t>(c)] + 1.0F;
      }
      const auto slot = s.append(h, k, v, {next_pos, 0.5F, token_class::punctuation, keep_reason::window});
      REQUIRE(slot == static_cast<std::int32_t>(m.size()));
      m[next_pos++] = k;
    } else {
      const auto slot = std::uniform_int_distribution<std::int32_t>(0, s.size(h) - 1)(rng);
      const auto pos = s.meta(h, slot).position;
      const auto last_pos = s.meta(h, s.size(h) - 1).position;
      const auto moved = s.erase(h, slot);
      m.erase(pos);
      if (slot == static_cast<std::int32_t>(m.size())) {
        REQUIRE(moved == -1);
      } else {
        REQUIRE(moved == static_cast<std::int32_t>(m.size()));
        REQUIRE(s.meta(h, slot).position == last_pos);
      }
    }
    if (it % 97 == 0) {
      std::size_t pages = 0;
      for (int x = 0; x < 12; ++x) {
        const head_id hx{x / 6, (x / 3) % 2, x % 3};
        const auto& mx = model[s.index(hx)];
        REQUIRE(s.size(hx) == static_cast<std::int32_t>(mx.size()));
        REQUIRE(s.page_count(hx) == (s.size(hx) + 3) / 4);
        pages += static_cast<std::size_t>(s.page_count(hx));
        for (std::int32_t slot = 0; slot < s.size(hx); ++slot) {
          const auto meta = s.meta(hx, slot);
          REQUIRE(mx.count(meta.position) == 1);
          REQUIRE(row_of(s, hx, slot, false) == mx.at(meta.position));
          auto v = mx.at(meta.position);
          for (auto& x2 : v) {
            x2 += 1.0F;
          }
          REQUIRE(row_of(s, hx, slot, true) == v);
          REQUIRE(meta.score == 0.5F);
          REQUIRE(meta.cls == token_class::punctuation);
        }
      }
      REQUIRE(s.pages_in_use() == pages);
      REQUIRE(s.bytes_resident() == pages * s.page_bytes());
    }
  }
}

TEST_CASE("page bytes hold K, V and metadata, aligned to 64 bytes", "[store]") {
  paged_store<float> f({.head_dim = 128, .page_size = 16});
  CHECK(f.page_bytes() == 16576); // 16 * (2 * 128 * 4 + 4 + 4 + 1 + 1) = 16544, padded to 64
  paged_store<bfloat16> b({.head_dim = 128, .page_size = 16});
  CHECK(b.page_bytes() % 64 == 0);
  CHECK(b.page_bytes() >= 16 * (2 * 128 * 2 + 10));
  CHECK(b.page_bytes() < 16 * (2 * 128 * 2 + 10) + 64);
  CHECK(b.kv_bytes_per_token() == 512);
}

TEST_CASE("bfloat16 and half storage round to nearest", "[store][numeric]") {
  paged_store<bfloat16> s({.head_dim = 2, .page_size = 2});
  const std::vector<float> k{1.0F + 1.0F / 256.0F, 3.14159265F}, v{-2.5F, 1e-3F};
  s.append({}, k, v, {});
  const auto got = row_of(s, {}, 0, false);
  CHECK(got[0] == 1.0F); // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even wins
  CHECK(got[1] == Approx(3.140625)); // nearest bfloat16 to pi
  CHECK(row_of(s, {}, 0, true)[0] == -2.5F);
}

TEST_CASE("an exhausted pool throws and leaves the store unchanged and usable", "[store][memory]") {
  paged_store<float> s({.n_head_kv = 2, .head_dim = 2, .page_size = 2, .max_pages = 2});
  const std::vector<float> r{1.0F, 2.0F};
  s.append({0, 0, 0}, r, r, {});
  s.append({0, 0, 1}, r, r, {});
  s.append({0, 0, 0}, r, r, {});
  CHECK_THROWS_AS(s.append({0, 0, 0}, r, r, {}), kvsieve::error);
  CHECK(s.size({0, 0, 0}) == 2);
  CHECK(s.pages_in_use() == 2);
  s.erase({0, 0, 1}, 0); // frees head 1's page
  CHECK(s.pages_in_use() == 1);
  CHECK(s.append({0, 0, 0}, r, r, {}) == 2);
  CHECK(s.size({0, 0, 0}) == 3);
  CHECK_THROWS_AS(s.append({0, 0, 0}, std::vector<float>{1.0F}, r, {}), kvsieve::error);
}

TEST_CASE("a capacity that is not a multiple of the chunk reserves exactly that many pages",
          "[store][memory]") {
  // 64-byte pages come in chunks of 2 MiB / 64 = 32768; a capacity of one more page needs a
  // second chunk of exactly one page.
  const std::size_t cap = 32768 + 1;
  paged_store<float> s({.head_dim = 2, .page_size = 2, .max_pages = cap});
  REQUIRE(s.page_bytes() == 64);
  const std::vector<float> r{1.0F, 2.0F};
  for (std::size_t i = 0; i < 2 * cap; ++i) {
    s.append({}, r, r, {});
  }
  CHECK(s.pages_in_use() == cap);
  CHECK(s.bytes_reserved() == cap * s.page_bytes());
  CHECK_THROWS_AS(s.append({}, r, r, {}), kvsieve::error);
  CHECK(s.meta({}, static_cast<std::int32_t>(2 * cap - 1)).position == 0); // last page readable
}
