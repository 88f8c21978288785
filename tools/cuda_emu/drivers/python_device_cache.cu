// The Python module's CUDA path (python/src/device_cache.cu, behind device_cache.hpp) against its
// host path (make_any_cache, as kvsieve._core calls both) on the same inputs: outputs, per-head
// choices, kept counts, lengths and bytes, for every policy the device build instantiates, with
// bfloat16 pages and bfloat16 arrays (widened and narrowed by the module's own kernels), a call
// stream other than the cache's (the event join), a replayed head profile, and a pool exhausted
// during decode (the sticky error). What torch and nanobind add (DLPack, the GIL, torch's
// streams) is python/tests/test_cuda.py's, on a GPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/catch.hpp"

#include "python_src/device_cache.cu" // transformed by tools/cuda_emu/transform.py

namespace {
using namespace kvsieve;
using namespace kvsieve::python;

constexpr std::int32_t hq = 4, hkv = 2, dim = 64, page = 16, prompt = 40, steps = 10;

struct arrays {
  std::vector<float> q, k, v; // [prompt + steps, heads, dim]
};

auto random_arrays(std::uint32_t seed) -> arrays {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0F, 1.0F);
  arrays a;
  const auto t = static_cast<std::size_t>(prompt + steps);
  a.q.resize(t * hq * dim);
  a.k.resize(t * hkv * dim);
  a.v.resize(t * hkv * dim);
  for (auto* x : {&a.q, &a.k, &a.v}) {
    for (auto& e : *x) {
      e = n(rng);
    }
  }
  return a;
}

/// Rounds every element to bfloat16 (the inputs both paths see when the arrays are bfloat16).
void round_bf16(std::vector<float>& x) {
  for (auto& e : x) {
    e = bfloat16::from_float(e).to_float();
  }
}

/// "Device" memory (the emulator's cudaMalloc is host memory) holding `n` elements of T.
template <class T>
struct dev_array {
  cuda::device_buffer<T> buf;
  device_array view;
};

template <class T>
auto to_device(const float* src, std::size_t rank, std::array<std::size_t, 3> shape)
    -> dev_array<T> {
  std::size_t n = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    n *= shape[i];
  }
  std::vector<T> host(n);
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<T, float>) {
      host[i] = src == nullptr ? 0.0F : src[i];
    } else {
      host[i] = bfloat16::from_float(src == nullptr ? 0.0F : src[i]);
    }
  }
  dev_array<T> d{cuda::device_buffer<T>(n), {}};
  d.buf.upload(host);
  d.view = {d.buf.data(), std::is_same_v<T, bfloat16>, rank, shape};
  return d;
}

template <class T>
auto from_device(const dev_array<T>& d) -> std::vector<float> {
  std::vector<T> host(d.buf.size());
  d.buf.download(host);
  std::vector<float> out(host.size());
  for (std::size_t i = 0; i < host.size(); ++i) {
    if constexpr (std::is_same_v<T, float>) {
      out[i] = host[i];
    } else {
      out[i] = host[i].to_float();
    }
  }
  return out;
}

struct run_options {
  std::string policy = "fastgen";
  element pages = element::float32;
  bool bf16_arrays = false;
  std::uintptr_t call_stream = 0; // 0: the cache's own (legacy) stream
  std::optional<head_profile> replay;
};

auto settings_of(const run_options& r) -> policy_settings {
  return {.name = r.policy, .threshold = 0.9, .window = 16, .budget = 24};
}

const store_geometry geometry{.n_seq = 1, .n_layer = 2, .n_head_kv = hkv, .head_dim = dim,
                              .page_size = page, .max_pages = 1024,
                              .max_context = prompt + steps};
const cache_options options{.n_head_q = hq};

template <class T>
void compare(const run_options& r, std::uint32_t seed) {
  INFO("policy " << r.policy << ", bfloat16 pages " << (r.pages == element::bfloat16)
                 << ", bfloat16 arrays " << r.bf16_arrays << ", call stream " << r.call_stream);
  auto a = random_arrays(seed);
  if (r.bf16_arrays) {
    round_bf16(a.q), round_bf16(a.k), round_bf16(a.v);
  }
  auto host = make_any_cache(settings_of(r), geometry, options, r.pages, r.replay);
  auto dev = make_device_cache(settings_of(r), geometry, options, r.pages, r.replay, 0, 0);
  REQUIRE(dev->ladder_names() == host->ladder_names());
  REQUIRE(dev->device() == 0);
  const double tol = r.bf16_arrays ? 2e-2 : 2e-4;
  auto expect_close = [&](const std::vector<float>& want, const std::vector<float>& got) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      // The device narrows its float32 output to bfloat16 for bfloat16 arrays.
      const float w = r.bf16_arrays ? bfloat16::from_float(want[i]).to_float() : want[i];
      REQUIRE(std::abs(got[i] - w) <= tol * (1.0 + std::abs(w)));
    }
  };
  const auto L = static_cast<std::size_t>(prompt);
  std::vector<token_class> classes(L, token_class::none);
  classes[0] = token_class::special;
  for (std::size_t i = 5; i < L; i += 7) {
    classes[i] = token_class::punctuation;
  }
  for (std::int32_t layer = 0; layer < geometry.n_layer; ++layer) {
    std::vector<float> out(L * hq * dim);
    host->prefill(0, layer, {a.q.data(), {L, hq, dim}}, {a.k.data(), {L, hkv, dim}},
                  {a.v.data(), {L, hkv, dim}}, classes, {out.data(), {L, hq, dim}});
    auto q = to_device<T>(a.q.data(), 3, {L, hq, dim});
    auto k = to_device<T>(a.k.data(), 3, {L, hkv, dim});
    auto v = to_device<T>(a.v.data(), 3, {L, hkv, dim});
    auto o = to_device<T>(nullptr, 3, {L, hq, dim});
    dev->prefill(0, layer, q.view, k.view, v.view, classes, o.view, r.call_stream);
    expect_close(out, from_device(o));
  }
  for (std::size_t t = L; t < L + steps; ++t) {
    for (std::int32_t layer = 0; layer < geometry.n_layer; ++layer) {
      std::vector<float> out(hq * dim);
      const float* qt = a.q.data() + t * hq * dim;
      const float* kt = a.k.data() + t * hkv * dim;
      const float* vt = a.v.data() + t * hkv * dim;
      host->decode(0, layer, {qt, {hq, dim}}, {kt, {hkv, dim}}, {vt, {hkv, dim}},
                   token_class::none, {out.data(), {hq, dim}});
      auto q = to_device<T>(qt, 2, {hq, dim, 0});
      auto k = to_device<T>(kt, 2, {hkv, dim, 0});
      auto v = to_device<T>(vt, 2, {hkv, dim, 0});
      auto o = to_device<T>(nullptr, 2, {hq, dim, 0});
      dev->decode(0, layer, q.view, k.view, v.view, token_class::none, o.view, r.call_stream);
      expect_close(out, from_device(o));
    }
  }
  dev->synchronize();
  const auto hr = host->report();
  const auto dr = dev->report();
  REQUIRE(dr.heads.size() == hr.heads.size());
  for (std::size_t i = 0; i < hr.heads.size(); ++i) {
    INFO("head " << i);
    REQUIRE(dr.heads[i].label() == hr.heads[i].label());
    REQUIRE(dr.heads[i].kept == hr.heads[i].kept);
    REQUIRE(dr.heads[i].length == hr.heads[i].length);
  }
  REQUIRE(dr.bytes_resident == hr.bytes_resident);
  REQUIRE(dr.bytes_full == hr.bytes_full);
  REQUIRE(dev->length(0, 1) == host->length(0, 1));
}

} // namespace

TEST_CASE("python device_cache: every device policy equals the host cache") {
  REQUIRE(device_built());
  REQUIRE(device_count() == 1);
  const auto names = device_policy_names();
  REQUIRE(!names.empty());
  std::uint32_t seed = 1;
  for (const auto& name : names) {
    compare<float>({.policy = name}, seed++);
  }
}

TEST_CASE("python device_cache: bfloat16 pages and arrays, another stream") {
  cudaStream_t side = nullptr;
  REQUIRE(cudaStreamCreate(&side) == cudaSuccess);
  const auto s = reinterpret_cast<std::uintptr_t>(side);
  compare<bfloat16>({.policy = "fastgen", .pages = element::bfloat16, .bf16_arrays = true}, 7);
  compare<bfloat16>({.policy = "h2o", .pages = element::float32, .bf16_arrays = true}, 8);
  compare<float>({.policy = "snapkv", .pages = element::bfloat16, .call_stream = s}, 9);
  compare<bfloat16>({.policy = "adakv", .bf16_arrays = true, .call_stream = s}, 10);
  REQUIRE(cudaStreamDestroy(side) == cudaSuccess);
}

TEST_CASE("python device_cache: a head profile replays on the device") {
  auto a = random_arrays(11);
  const run_options r{.policy = "fastgen"};
  auto host = make_any_cache(settings_of(r), geometry, options, element::float32, std::nullopt);
  const auto L = static_cast<std::size_t>(prompt);
  const std::vector<token_class> classes(L, token_class::none);
  for (std::int32_t layer = 0; layer < geometry.n_layer; ++layer) {
    std::vector<float> out(L * hq * dim);
    host->prefill(0, layer, {a.q.data(), {L, hq, dim}}, {a.k.data(), {L, hkv, dim}},
                  {a.v.data(), {L, hkv, dim}}, classes, {out.data(), {L, hq, dim}});
  }
  compare<float>({.policy = "fastgen", .replay = host->profile(0)}, 12);
}

TEST_CASE("python device_cache: refusals and the sticky decode error") {
  CHECK_THROWS_WITH(make_device_cache({.name = "h3o"}, geometry, options, element::float32,
                                      std::nullopt, 0, 0),
                    Catch::Contains("unknown policy 'h3o'"));
  CHECK_THROWS_WITH(make_device_cache({.name = "fastgen"}, geometry, options, element::float32,
                                      std::nullopt, -1, 0),
                    Catch::Contains("device ordinal must be >= 0"));
  auto no_pool = geometry;
  no_pool.max_pages = 0;
  CHECK_THROWS_WITH(make_device_cache({.name = "full"}, no_pool, options, element::float32,
                                      std::nullopt, 0, 0),
                    Catch::Contains("max_pages"));

  // A pool of exactly the prompt's pages: the first decode step that needs a page fails on the
  // device, and the error is raised by the next synchronising call until clear_error().
  auto tight = geometry;
  tight.n_layer = 1;
  tight.max_pages = 2 * hkv;
  tight.max_context = 0;
  auto dev = make_device_cache({.name = "full"}, tight, options, element::float32, std::nullopt,
                               0, 0);
  auto a = random_arrays(13);
  const std::size_t L = 2 * page;
  const std::vector<token_class> classes(L, token_class::none);
  auto q = to_device<float>(a.q.data(), 3, {L, hq, dim});
  auto k = to_device<float>(a.k.data(), 3, {L, hkv, dim});
  auto v = to_device<float>(a.v.data(), 3, {L, hkv, dim});
  auto o = to_device<float>(nullptr, 3, {L, hq, dim});
  dev->prefill(0, 0, q.view, k.view, v.view, classes, o.view, 0);
  auto q1 = to_device<float>(a.q.data() + L * hq * dim, 2, {hq, dim, 0});
  auto k1 = to_device<float>(a.k.data() + L * hkv * dim, 2, {hkv, dim, 0});
  auto v1 = to_device<float>(a.v.data() + L * hkv * dim, 2, {hkv, dim, 0});
  auto o1 = to_device<float>(nullptr, 2, {hq, dim, 0});
  dev->decode(0, 0, q1.view, k1.view, v1.view, token_class::none, o1.view, 0);
  try {
    dev->synchronize();
    FAIL("synchronize() did not raise the pool exhausted by decode");
  } catch (const kvsieve::error& e) {
    CHECK(e.code() == errc::out_of_memory);
  }
  CHECK_THROWS(dev->report());
  dev->clear_error();
  CHECK(dev->length(0, 0) == static_cast<std::int32_t>(L));
  dev->release(0);
  CHECK(dev->length(0, 0) == 0);
  dev->prefill(0, 0, q.view, k.view, v.view, classes, o.view, 0);
}
