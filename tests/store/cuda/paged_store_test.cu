// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The device store against the host store: the same operations give the same slots, metadata,
// rows (after the same rounding) and bytes_resident.
#include <cstdint>
#include <random>
#include <vector>

#include "common/catch.hpp"

#include <kvsieve/kvsieve.hpp>
#include <kvsieve/store/cuda/paged_store.cuh>

namespace {
using namespace kvsieve;

template <class T>
void expect_same_head(const paged_store<T>& host, const paged_store<T, cuda_space>& dev,
                      head_id h) {
  const auto tokens = dev.tokens(h);
  REQUIRE(static_cast<std::int32_t>(tokens.size()) == host.size(h));
  const auto d = static_cast<std::size_t>(host.geometry().head_dim);
  const auto ps = host.geometry().page_size;
  for (std::int32_t slot = 0; slot < host.size(h); ++slot) {
    const auto& t = tokens[static_cast<std::size_t>(slot)];
    const auto m = host.meta(h, slot);
    CHECK(t.meta.position == m.position);
    CHECK(t.meta.score == m.score);
    CHECK(t.meta.cls == m.cls);
    CHECK(t.meta.reason == m.reason);
    const auto page = host.page(h, slot / ps);
    const auto off = static_cast<std::size_t>(slot % ps) * d;
    for (std::size_t c = 0; c < d; ++c) {
      CHECK(t.key[c] == load_float(page.keys[off + c]));
      CHECK(t.value[c] == load_float(page.values[off + c]));
    }
  }
}
} // namespace

TEMPLATE_TEST_CASE("device store: random appends and erases match the host store",
                   "[cuda][store]", float, kvsieve::bfloat16, kvsieve::half) {
  const store_geometry g{.n_seq = 2, .n_layer = 2, .n_head_kv = 3, .head_dim = 64,
                         .page_size = 4, .max_pages = 200};
  paged_store<TestType> host(g);
  paged_store<TestType, cuda_space> dev(g);
  std::mt19937 rng(7);
  std::normal_distribution<float> val;
  std::uniform_int_distribution<std::int32_t> seq(0, 1), layer(0, 1), head(0, 2);
  std::vector<float> k(64), v(64);
  for (std::int32_t step = 0; step < 400; ++step) {
    const head_id h{seq(rng), layer(rng), head(rng)};
    const bool erase = host.size(h) > 0 && std::uniform_int_distribution<>(0, 2)(rng) == 0;
    if (erase) {
      const auto slot = std::uniform_int_distribution<std::int32_t>(0, host.size(h) - 1)(rng);
      CHECK(dev.erase(h, slot) == host.erase(h, slot));
    } else {
      for (auto& x : k) {
        x = val(rng);
      }
      for (auto& x : v) {
        x = val(rng);
      }
      const token_meta m{step, val(rng), token_class::punctuation, keep_reason::budget};
      CHECK(dev.append(h, k, v, m) == host.append(h, k, v, m));
    }
    CHECK(dev.bytes_resident() == host.bytes_resident());
  }
  for (std::int32_t s = 0; s < 2; ++s) {
    for (std::int32_t l = 0; l < 2; ++l) {
      for (std::int32_t hh = 0; hh < 3; ++hh) {
        expect_same_head(host, dev, {s, l, hh});
      }
    }
  }
  dev.clear(0, dev.n_heads());
  CHECK(dev.bytes_resident() == 0);
  CHECK(dev.size({1, 1, 2}) == 0);
}

TEST_CASE("device store: an exhausted pool throws out_of_memory and changes nothing",
          "[cuda][store]") {
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 32,
                         .page_size = 2, .max_pages = 3};
  paged_store<float, cuda_space> dev(g);
  std::vector<float> row(32, 1.0F);
  for (std::int32_t i = 0; i < 5; ++i) {
    dev.append({0, 0, i % 2}, row, row, {i, 0.0F, token_class::none, keep_reason::rule});
  }
  // Head 0 holds 3 tokens in 2 pages, head 1 holds 2 in the pool's last page.
  CHECK(dev.pages_in_use() == 3);
  try {
    dev.append({0, 0, 0}, row, row, {9, 0.0F, token_class::none, keep_reason::rule});
    dev.append({0, 0, 0}, row, row, {10, 0.0F, token_class::none, keep_reason::rule});
    FAIL("appending past the pool did not throw");
  } catch (const error& e) {
    CHECK(e.code() == errc::out_of_memory);
  }
  CHECK(dev.size({0, 0, 0}) == 4); // the first append fit in head 0's second page
  CHECK(dev.size({0, 0, 1}) == 2);
  CHECK(dev.pages_in_use() == 3);
  // Still usable: empty head 1 (its page returns) and append again.
  CHECK(dev.erase({0, 0, 1}, 0) == 1);
  CHECK(dev.erase({0, 0, 1}, 0) == -1);
  CHECK(dev.pages_in_use() == 2);
  dev.append({0, 0, 0}, row, row, {11, 0.0F, token_class::none, keep_reason::rule});
  CHECK(dev.size({0, 0, 0}) == 5);
}

TEST_CASE("device store: bad geometry and bad arguments are errors", "[cuda][store]") {
  CHECK_THROWS_AS((paged_store<float, cuda_space>(store_geometry{.max_pages = 0})), error);
  CHECK_THROWS_AS((paged_store<bfloat16, cuda_space>(
                      store_geometry{.head_dim = 4, .max_pages = 8})),
                  error); // 8 bytes per row: not a multiple of 16
  paged_store<float, cuda_space> dev(store_geometry{.head_dim = 8, .page_size = 2,
                                                    .max_pages = 4});
  std::vector<float> row(8), short_row(7);
  CHECK_THROWS_AS(dev.append({0, 0, 0}, short_row, row, {}), error);
  CHECK_THROWS_AS(dev.append({1, 0, 0}, row, row, {}), error);
  CHECK_THROWS_AS(dev.erase({0, 0, 0}, 0), error);
}

namespace {
// Prompt rows as In (rounded), the host store fed the same rounded values.
template <class T, class In>
void check_compaction() {
  const std::int32_t L = 37;
  const store_geometry g{.n_seq = 1, .n_layer = 1, .n_head_kv = 2, .head_dim = 64,
                         .page_size = 8, .max_pages = 64};
  std::mt19937 rng(3);
  std::normal_distribution<float> val;
  std::vector<float> k(static_cast<std::size_t>(L) * 2 * 64), v(k.size());
  std::vector<In> k_in(k.size()), v_in(v.size());
  for (std::size_t i = 0; i < k.size(); ++i) {
    k_in[i] = store_as<In>(val(rng));
    v_in[i] = store_as<In>(val(rng));
    k[i] = load_float(k_in[i]);
    v[i] = load_float(v_in[i]);
  }
  std::vector<token_class> classes(L, token_class::none);
  classes[3] = token_class::special;
  // Head 0 keeps every third row, head 1 keeps rows 30..36 and row 0.
  std::vector<std::int32_t> offsets{0}, rows;
  std::vector<keep_reason> reasons;
  std::vector<float> scores;
  paged_store<T> host(g);
  for (std::int32_t h = 0; h < 2; ++h) {
    for (std::int32_t j = 0; j < L; ++j) {
      if (h == 0 ? j % 3 == 0 : (j == 0 || j >= 30)) {
        rows.push_back(j);
        reasons.push_back(j == 0 ? keep_reason::rule : keep_reason::window);
        scores.push_back(0.5F * static_cast<float>(j));
        const auto r = static_cast<std::size_t>(j * 2 + h) * 64;
        host.append({0, 0, h}, {k.data() + r, 64}, {v.data() + r, 64},
                    {j, scores.back(), classes[static_cast<std::size_t>(j)], reasons.back()});
      }
    }
    offsets.push_back(static_cast<std::int32_t>(rows.size()));
  }
  cuda::device_buffer<std::int32_t> d_offsets(offsets.size()), d_rows(rows.size());
  cuda::device_buffer<keep_reason> d_reasons(reasons.size());
  cuda::device_buffer<float> d_scores(scores.size());
  cuda::device_buffer<In> d_k(k.size()), d_v(v.size());
  cuda::device_buffer<token_class> d_classes(classes.size());
  d_offsets.upload(offsets);
  d_rows.upload(rows);
  d_reasons.upload(reasons);
  d_scores.upload(scores);
  d_k.upload(k_in);
  d_v.upload(v_in);
  d_classes.upload(classes);
  paged_store<T, cuda_space> dev(g);
  dev.assign_prompt(0, offsets, d_offsets.data(), d_rows.data(), d_reasons.data(),
                    d_scores.data(), d_classes.data(), d_k.data(), d_v.data());
  cuda::check(cudaDeviceSynchronize(), "sync");
  CHECK(dev.bytes_resident() == host.bytes_resident());
  expect_same_head(host, dev, {0, 0, 0});
  expect_same_head(host, dev, {0, 0, 1});
  // A second compaction into non-empty heads is refused.
  CHECK_THROWS_AS(dev.assign_prompt(0, offsets, d_offsets.data(), d_rows.data(),
                                    d_reasons.data(), d_scores.data(), d_classes.data(),
                                    d_k.data(), d_v.data()),
                  error);
}
} // namespace

TEST_CASE("device store: prompt compaction writes exactly the host's appends", "[cuda][store]") {
  SECTION("float prompt into bf16 pages (vector loads, converted)") {
    check_compaction<kvsieve::bfloat16, float>();
  }
  SECTION("bf16 prompt into bf16 pages (16-byte copies)") {
    check_compaction<kvsieve::bfloat16, kvsieve::bfloat16>();
  }
  SECTION("bf16 prompt into float pages (per element)") {
    check_compaction<float, kvsieve::bfloat16>();
  }
  SECTION("half prompt into half pages") {
    check_compaction<kvsieve::half, kvsieve::half>();
  }
}
