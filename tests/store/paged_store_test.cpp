// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// paged_store: dense slots, swap-with-last erase, pages returned to the pool, exact bytes, typed
// storage, out-of-memory that leaves the store unchanged, and the block-table view a kernel reads
// (page_ids, page_address, layout).
#include <common/catch.hpp>

#include <algorithm>
#include <cstring>
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

namespace {
// One field of one token read from raw page bytes through the layout alone.
template <class U>
auto read_field(const std::byte* page, const page_field& f, std::size_t row, std::size_t i = 0)
    -> U {
  U x{};
  std::memcpy(&x, page + f.offset + row * f.stride + i * sizeof(U), sizeof(U));
  return x;
}
} // namespace

TEMPLATE_TEST_CASE("a head read through page_ids, page_address and layout alone is what was "
                   "appended, after erases too",
                   "[store][layout]", float, bfloat16, half) {
  const store_geometry g{.n_seq = 1, .n_layer = 2, .n_head_kv = 3, .head_dim = 6, .page_size = 5};
  paged_store<TestType> s(g);
  const page_layout& l = s.layout();
  // The layout itself: every field inside the page, in the documented order, none overlapping.
  const std::size_t ps = 5;
  const std::size_t row = 6 * sizeof(TestType);
  CHECK(l.page_bytes == s.page_bytes());
  CHECK(l.page_size == 5);
  CHECK(l.head_dim == 6);
  CHECK(l.element_bytes == sizeof(TestType));
  CHECK(l.keys == page_field{0, row});
  CHECK(l.values == page_field{ps * row, row});
  CHECK(l.positions.offset >= l.values.offset + ps * row);
  CHECK(l.positions.stride == 4);
  CHECK(l.scores.offset >= l.positions.offset + ps * 4);
  CHECK(l.scores.stride == 4);
  CHECK(l.classes.offset >= l.scores.offset + ps * 4);
  CHECK(l.reasons.offset >= l.classes.offset + ps);
  CHECK(l.classes.stride == 1);
  CHECK(l.reasons.stride == 1);
  CHECK(l.reasons.offset + ps <= l.page_bytes);
  CHECK(l.page_bytes % 64 == 0);

  std::mt19937 rng(17);
  struct token {
    std::vector<float> k, v;
    float score;
    token_class cls;
  };
  std::map<std::size_t, std::map<std::int32_t, token>> model; // head -> position -> token
  std::int32_t next = 0;
  for (int it = 0; it < 1500; ++it) {
    const int hi = std::uniform_int_distribution<int>(0, 5)(rng);
    const head_id h{0, hi / 3, hi % 3};
    auto& m = model[s.index(h)];
    if (m.empty() || std::bernoulli_distribution(0.58)(rng)) {
      token t{{}, {}, static_cast<float>(next % 13) * 0.25F,
              next % 3 == 0 ? token_class::punctuation : token_class::none};
      for (int c = 0; c < 6; ++c) {
        t.k.push_back(static_cast<float>((next + c) % 50)); // exact in every element type
        t.v.push_back(-static_cast<float>((next * 3 + c) % 40));
      }
      s.append(h, t.k, t.v, {next, t.score, t.cls, keep_reason::budget});
      m[next++] = t;
    } else {
      const auto slot = std::uniform_int_distribution<std::int32_t>(0, s.size(h) - 1)(rng);
      m.erase(s.meta(h, slot).position);
      s.erase(h, slot);
    }
    if (it % 50 != 49) {
      continue;
    }
    std::vector<std::int32_t> all_ids;
    for (int x = 0; x < 6; ++x) {
      const head_id hx{0, x / 3, x % 3};
      const auto& mx = model[s.index(hx)];
      const auto ids = s.page_ids(hx);
      const auto n = static_cast<std::size_t>(s.size(hx));
      REQUIRE(n == mx.size());
      REQUIRE(ids.size() == (n + ps - 1) / ps);
      all_ids.insert(all_ids.end(), ids.begin(), ids.end());
      std::map<std::int32_t, int> seen;
      for (std::size_t slot = 0; slot < n; ++slot) {
        const std::byte* page = s.page_address(ids[slot / ps]);
        const std::size_t r = slot % ps;
        const auto pos = read_field<std::int32_t>(page, l.positions, r);
        REQUIRE(mx.count(pos) == 1);
        ++seen[pos];
        const token& t = mx.at(pos);
        for (std::size_t c = 0; c < 6; ++c) {
          REQUIRE(load_float(read_field<TestType>(page, l.keys, r, c)) == t.k[c]);
          REQUIRE(load_float(read_field<TestType>(page, l.values, r, c)) == t.v[c]);
        }
        REQUIRE(read_field<float>(page, l.scores, r) == t.score);
        REQUIRE(read_field<token_class>(page, l.classes, r) == t.cls);
        REQUIRE(read_field<keep_reason>(page, l.reasons, r) == keep_reason::budget);
      }
      REQUIRE(seen.size() == n); // every resident token exactly once
    }
    // No page belongs to two heads, and the ids are exactly the pages in use.
    std::sort(all_ids.begin(), all_ids.end());
    REQUIRE(std::adjacent_find(all_ids.begin(), all_ids.end()) == all_ids.end());
    REQUIRE(all_ids.size() == s.pages_in_use());
  }
}

TEST_CASE("page addresses span more than one 2 MiB chunk", "[store][layout]") {
  // 64-byte pages: 32768 to a chunk; the 32769th page is in a second allocation.
  paged_store<float> s({.head_dim = 2, .page_size = 2});
  const std::vector<float> r{1.0F, 2.0F};
  for (std::int32_t i = 0; i < 2 * 32770; ++i) {
    s.append({}, r, std::vector<float>{static_cast<float>(i), 0.0F}, {i, 0.0F, {}, {}});
  }
  const auto ids = s.page_ids({});
  REQUIRE(ids.size() == 32770);
  const page_layout& l = s.layout();
  for (std::size_t slot = 0; slot < 2 * ids.size(); slot += 997) {
    const std::byte* page = s.page_address(ids[slot / 2]);
    CHECK(read_field<float>(page, l.values, slot % 2) == static_cast<float>(slot));
    CHECK(read_field<std::int32_t>(page, l.positions, slot % 2) == static_cast<std::int32_t>(slot));
  }
}
