// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// Head-profile files: a prefilled cache's choices and budgets survive save and load, replay on
// another prompt gives every head the file's choice, a file for another ladder or geometry is a
// clear error, and malformed input of every kind is a clean kvsieve::error (errc::io).
#include <cache/cache_fixture.hpp>
#include <common/expect_error.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <kvsieve/kvsieve.hpp>
#include <kvsieve/profile/profile_file.hpp>

namespace {
using namespace kvsieve;
using json = nlohmann::json;

/// kvsieve::testing::expect_error, and the message stays short whatever the input.
template <class F>
void expect_error(F&& f, errc code, const std::string& fragment) {
  CHECK(kvsieve::testing::expect_error(std::forward<F>(f), code, fragment).size() < 600);
}

/// One prompt for every layer: random data (cache_fixture's make_problem) where each KV head is
/// made either to look only at BOS (FastGen keeps `special`) or to attend uniformly (zero
/// queries: only a large candidate recovers T).
struct prompt {
  std::int32_t length, hq, hkv, d;
  std::vector<testing::problem> layers;
};

auto make_prompt(std::int32_t n_layer, std::int32_t hkv, std::int32_t group, std::int32_t length,
                 std::uint32_t seed, const std::function<bool(std::int32_t, std::int32_t)>& bos)
    -> prompt {
  constexpr std::int32_t d = 8;
  const std::int32_t hq = hkv * group;
  prompt p{length, hq, hkv, d, {}};
  for (std::int32_t l = 0; l < n_layer; ++l) {
    auto pr = testing::make_problem(length, hq, hkv, d, 0, seed + static_cast<std::uint32_t>(l));
    if (l > 0) {
      pr.classes = p.layers.front().classes; // classes belong to tokens, not layers
    }
    const auto n = static_cast<std::size_t>(length);
    const auto D = static_cast<std::size_t>(d);
    for (std::int32_t h = 0; h < hkv; ++h) {
      const bool to_bos = bos(l, h);
      for (std::size_t j = 0; j < n; ++j) {
        for (std::int32_t g = 0; g < group; ++g) {
          float* q =
              pr.q.data() +
              (j * static_cast<std::size_t>(hq) + static_cast<std::size_t>(h * group + g)) * D;
          for (std::size_t c = 0; c < D; ++c) {
            q[c] = to_bos && c == 0 ? 10.0F : 0.0F;
          }
        }
        if (to_bos) {
          pr.k[(j * static_cast<std::size_t>(hkv) + static_cast<std::size_t>(h)) * D] =
              j == 0 ? 10.0F : 0.0F;
        }
      }
    }
    p.layers.push_back(std::move(pr));
  }
  return p;
}

template <class Cache>
void prefill(Cache& cache, const prompt& p, std::int32_t layers = -1) {
  const auto n = static_cast<std::size_t>(p.length);
  const auto hq = static_cast<std::size_t>(p.hq);
  const auto hkv = static_cast<std::size_t>(p.hkv);
  const auto d = static_cast<std::size_t>(p.d);
  std::vector<float> out(n * hq * d);
  const auto count = layers < 0 ? static_cast<std::int32_t>(p.layers.size()) : layers;
  for (std::int32_t l = 0; l < count; ++l) {
    const auto& pr = p.layers[static_cast<std::size_t>(l)];
    cache.prefill(0, l, {pr.q.data(), {n, hq, d}}, {pr.k.data(), {n, hkv, d}},
                  {pr.v.data(), {n, hkv, d}}, pr.classes, {out.data(), {n, hq, d}});
  }
}

template <class Cache>
auto choices(const Cache& cache) -> std::vector<std::size_t> {
  std::vector<std::size_t> out;
  const auto& g = cache.store().geometry();
  for (std::int32_t l = 0; l < g.n_layer; ++l) {
    for (std::int32_t h = 0; h < g.n_head_kv; ++h) {
      out.push_back(cache.choice({0, l, h}));
    }
  }
  return out;
}

template <class Cache>
auto fixed_budgets(const Cache& cache) -> std::vector<std::int32_t> {
  std::vector<std::int32_t> out;
  const auto& g = cache.store().geometry();
  for (std::int32_t l = 0; l < g.n_layer; ++l) {
    for (std::int32_t h = 0; h < g.n_head_kv; ++h) {
      out.push_back(cache.fixed_budget({0, l, h}));
    }
  }
  return out;
}

auto file_choices(const head_profile& p) -> std::vector<std::size_t> {
  std::vector<std::size_t> out;
  for (const auto& e : p.heads) {
    out.push_back(e.choice);
  }
  return out;
}

auto saved(const head_profile& p) -> std::string {
  std::ostringstream os;
  save_profile(p, os);
  return os.str();
}

auto loaded(const std::string& text) -> head_profile {
  std::istringstream is(text);
  return load_profile(is);
}

constexpr std::int32_t n_layer = 3;
constexpr std::int32_t n_head_kv = 2;
const store_geometry geometry{
    .n_seq = 1, .n_layer = n_layer, .n_head_kv = n_head_kv, .head_dim = 8, .page_size = 8};
const cache_options options{.n_head_q = 4};

/// Layer l, head h looks at BOS when (l + h) is even: FastGen picks different candidates.
auto prompt_a() -> prompt {
  return make_prompt(n_layer, n_head_kv, 2, 40, 101,
                     [](std::int32_t l, std::int32_t h) { return (l + h) % 2 == 0; });
}
/// Another length, other data, and every head's pattern swapped.
auto prompt_b() -> prompt {
  return make_prompt(n_layer, n_head_kv, 2, 32, 202,
                     [](std::int32_t l, std::int32_t h) { return (l + h) % 2 == 1; });
}

/// The profile FastGen (T = 0.95) takes on prompt A.
auto fastgen_profile() -> head_profile {
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(0.95), geometry, options);
  prefill(cache, prompt_a());
  auto p = profile_of(cache, 0.95);
  p.model = "test: 3 layers x 2 KV heads";
  return p;
}

/// A small consistent profile written by hand, the base of the malformed-input corpus.
auto small_profile() -> head_profile {
  head_profile p;
  p.ladder = {"special", "special+punct", "full"};
  p.threshold = 0.9;
  p.n_layer = 2;
  p.n_head_kv = 2;
  p.model = "tiny";
  for (std::int32_t l = 0; l < 2; ++l) {
    for (std::int32_t h = 0; h < 2; ++h) {
      const auto c = static_cast<std::size_t>((l + h) % 3);
      p.heads.push_back({l, h, c, p.ladder[c], c == 1 ? 5 : -1, 17, 0.25 * (1 + l + h)});
    }
  }
  return p;
}

} // namespace

TEST_CASE("a FastGen profile records every head's choice as the cache reports it",
          "[profile_file]") {
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(0.95), geometry, options);
  prefill(cache, prompt_a());
  const auto p = profile_of(cache, 0.95);
  REQUIRE(p.ladder.size() == fastgen_ladder::size);
  for (std::size_t i = 0; i < fastgen_ladder::size; ++i) {
    CHECK(p.ladder[i] == fastgen_ladder::name(i));
  }
  CHECK(p.threshold == 0.95);
  CHECK(p.n_layer == n_layer);
  CHECK(p.n_head_kv == n_head_kv);
  REQUIRE(p.heads.size() == static_cast<std::size_t>(n_layer * n_head_kv));
  const auto report = cache.report();
  for (const auto& h : report.heads) {
    const auto& e = p.at(h.head.layer, h.head.head);
    CHECK(e.layer == h.head.layer);
    CHECK(e.kv_head == h.head.head);
    CHECK(e.choice == cache.choice(h.head));
    CHECK(e.policy == h.policy);
    CHECK(e.budget == cache.fixed_budget(h.head));
    CHECK(e.budget == -1); // FastGen's profiler fixes no budget
    CHECK(e.prompt_length == 40);
    CHECK(e.recovered == h.recovered);
  }
  // The prompt makes heads differ, so the file is not one choice repeated.
  const auto c = file_choices(p);
  CHECK(std::set<std::size_t>(c.begin(), c.end()).size() > 1);
}

TEST_CASE("a saved FastGen profile loads equal and replays its choices on a different prompt",
          "[profile_file]") {
  const auto original = fastgen_profile();
  const auto text = saved(original);
  INFO(text);
  CHECK(text.find("\"format\": \"kvsieve-head-profile\"") != std::string::npos);
  CHECK(text.find("\"version\": 1") != std::string::npos);
  const auto back = loaded(text);
  CHECK(back == original);
  CHECK(saved(back) == text);

  // FastGen itself, on prompt B, chooses otherwise (the patterns are swapped) ...
  adaptive_cache fresh(make_fastgen_ladder(), recovery_profiler(0.95), geometry, options);
  prefill(fresh, prompt_b());
  REQUIRE(choices(fresh) != file_choices(back));
  // ... the replay gives every head the file's choice.
  const replay_profiler replay(back);
  CHECK(replay.threshold() == 0.95);
  adaptive_cache cache(make_fastgen_ladder(), replay, geometry, options);
  check_compatible(back, cache.ladder(), geometry); // what a program checks before prefill
  prefill(cache, prompt_b());
  CHECK(choices(cache) == file_choices(back));
  for (const auto& h : cache.report().heads) {
    CHECK(h.policy == back.at(h.head.layer, h.head.head).policy);
    CHECK(h.length == 32);
  }
  // The replayed cache's own profile has the same choices, measured on the new prompt.
  const auto again = profile_of(cache, replay.threshold());
  CHECK(file_choices(again) == file_choices(back));
  CHECK(again.heads.front().prompt_length == 32);
}

TEST_CASE("PyramidKV budgets round-trip and the replayed cache reports the same fixed budgets",
          "[profile_file][pyramidkv]") {
  const store_geometry g{.n_seq = 1, .n_layer = 4, .n_head_kv = 2, .head_dim = 8, .page_size = 4};
  const cache_options o{.n_head_q = 2};
  const auto all = [](std::int32_t, std::int32_t) { return false; };
  const auto snap = [] { return ladder<policies::snapkv>(policies::snapkv(8, 4, 5)); };
  adaptive_cache cache(snap(), pyramid_profiler(8, 4), g, o);
  prefill(cache, make_prompt(4, 2, 1, 40, 301, all));
  const auto p = profile_of(cache, std::numeric_limits<double>::quiet_NaN());
  CHECK(std::isnan(p.threshold));
  for (const auto& e : p.heads) {
    CHECK(e.budget == cache.fixed_budget({0, e.layer, e.kv_head}));
    CHECK(e.budget >= 0);
    CHECK(e.policy == "snapkv");
  }
  REQUIRE(p.heads.front().budget > p.heads.back().budget); // the pyramid: deeper keeps fewer

  const auto text = saved(p);
  INFO(text);
  CHECK(text.find("\"threshold\": null") != std::string::npos);
  const auto back = loaded(text);
  CHECK(back == p);
  CHECK(std::isnan(back.threshold));

  // On a 16-token prompt PyramidKV's own schedule is another one ...
  const auto short_prompt = make_prompt(4, 2, 1, 16, 302, all);
  adaptive_cache fresh(snap(), pyramid_profiler(8, 4), g, o);
  prefill(fresh, short_prompt);
  std::vector<std::int32_t> file_budgets;
  for (const auto& e : back.heads) {
    file_budgets.push_back(e.budget);
  }
  REQUIRE(fixed_budgets(fresh) != file_budgets);
  // ... the replay keeps the file's.
  adaptive_cache replayed(snap(), replay_profiler(back), g, o);
  prefill(replayed, short_prompt);
  CHECK(fixed_budgets(replayed) == file_budgets);
  for (const auto& h : replayed.report().heads) {
    CHECK(h.fixed_budget);
    CHECK(h.budget == back.at(h.head.layer, h.head.head).budget);
    CHECK(h.label() == fmt::format("snapkv[k={}!]", h.budget));
  }
}

TEST_CASE("a profile for another ladder or geometry is a clear error before and at prefill",
          "[profile_file]") {
  const auto p = fastgen_profile();
  const auto b = prompt_b();
  SECTION("another ladder") {
    const auto snap = ladder<policies::snapkv>(policies::snapkv(8, 4, 5));
    const std::string msg = "at candidate 0: cache has \"snapkv\", file has \"special\"";
    expect_error([&] { check_compatible(p, snap, geometry); }, errc::invalid_argument, msg);
    adaptive_cache cache(snap, replay_profiler(p), geometry, options);
    expect_error([&] { prefill(cache, b); }, errc::invalid_argument, msg);
    CHECK(cache.length(0, 0) == 0); // the failed layer was rolled back
  }
  SECTION("a ladder that is a prefix of the file's") {
    using namespace policies;
    using short_ladder = ladder<special, special_punct, special_punct_frequent>;
    const auto full_ladder = make_fastgen_ladder();
    const short_ladder shorter(special{}, special_punct{}, full_ladder.get<2>());
    const std::string msg = fmt::format("cache's ladder (3 candidates) differs from the file's (5) "
                                        "at candidate 3: cache has none, file has \"{}\"",
                                        fastgen_ladder::name(3));
    expect_error([&] { check_compatible(p, shorter, geometry); }, errc::invalid_argument, msg);
    adaptive_cache cache(shorter, replay_profiler(p), geometry, options);
    expect_error([&] { prefill(cache, b); }, errc::invalid_argument, msg);
  }
  SECTION("another layer count") {
    store_geometry g = geometry;
    g.n_layer = 2;
    const std::string msg =
        "the file is for 3 layers x 2 KV heads, the cache has 2 layers x 2 KV heads";
    expect_error([&] { check_compatible(p, make_fastgen_ladder(), g); }, errc::invalid_argument,
                 msg);
    adaptive_cache cache(make_fastgen_ladder(), replay_profiler(p), g, options);
    expect_error([&] { prefill(cache, b, 1); }, errc::invalid_argument, msg);
  }
  SECTION("another KV head count") {
    store_geometry g = geometry;
    g.n_head_kv = 1;
    const std::string msg =
        "the file is for 3 layers x 2 KV heads, the cache has 3 layers x 1 KV heads";
    expect_error([&] { check_compatible(p, make_fastgen_ladder(), g); }, errc::invalid_argument,
                 msg);
    adaptive_cache cache(make_fastgen_ladder(), replay_profiler(p), g,
                         cache_options{.n_head_q = 2});
    const auto one_head = make_prompt(n_layer, 1, 2, 32, 5, [](auto, auto) { return true; });
    expect_error([&] { prefill(cache, one_head); }, errc::invalid_argument, msg);
  }
}

TEST_CASE("profile_of needs every layer prefilled; bad in-memory profiles are rejected",
          "[profile_file]") {
  adaptive_cache cache(make_fastgen_ladder(), recovery_profiler(0.95), geometry, options);
  prefill(cache, prompt_a(), 2);
  expect_error([&] { (void)profile_of(cache, 0.95); }, errc::bad_state,
               "sequence 0 layer 2 is not prefilled");
  expect_error([&] { (void)profile_of(cache, 0.95, 1); }, errc::out_of_range, "sequence index 1");

  auto p = small_profile();
  p.heads[1].policy = "full";
  expect_error([&] { (void)replay_profiler(p); }, errc::invalid_argument,
               "heads[1] (layer 0, kv_head 1): 'policy' \"full\" is not ladder[1]");
  expect_error([&] { (void)saved(p); }, errc::invalid_argument, "'policy' \"full\"");
  p = small_profile();
  std::swap(p.heads[0], p.heads[1]);
  expect_error([&] { validate(p); }, errc::invalid_argument, "out of place");
  p = small_profile();
  p.heads.pop_back();
  expect_error([&] { validate(p); }, errc::invalid_argument, "3 entries in 'heads', not");
  p = small_profile();
  p.threshold = std::numeric_limits<double>::infinity();
  expect_error([&] { validate(p); }, errc::invalid_argument, "'threshold' is infinite");
}

TEST_CASE("replay profilers are values: copies share the profile, equal profiles compare equal",
          "[profile_file]") {
  const replay_profiler a(small_profile());
  const replay_profiler copy = a; // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(&copy.profile() == &a.profile());
  CHECK(copy == a);
  const replay_profiler b(small_profile());
  CHECK(b == a);
  auto other = small_profile();
  other.heads[0].recovered = 0.5;
  CHECK(replay_profiler(other) != a);
  auto no_t = small_profile();
  no_t.threshold = std::numeric_limits<double>::quiet_NaN();
  CHECK(replay_profiler(no_t) == replay_profiler(no_t)); // NaN: no threshold, equal to itself
  // The recorded head_choice, by context.
  candidate_scores s;
  s.recovered = {0.1, 0.2, 1.0};
  s.names = {"special", "special+punct", "full"};
  s.context = {0, 1, 0, 2, 2, 99};
  CHECK(a(s) == head_choice{1, 5});
  s.context.kv_head = 1;
  CHECK(a(s) == head_choice{2, -1});
}

TEST_CASE("files: a profile written to disk reads back; missing files and directories are errors",
          "[profile_file]") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto file =
      dir / fmt::format("kvsieve_profile_file_test_{:08x}.json", std::random_device{}());
  const auto p = small_profile();
  save_profile(p, file);
  CHECK(load_profile(file) == p);
  std::filesystem::remove(file);
  expect_error([&] { (void)load_profile(file); }, errc::io, "cannot open");
  expect_error([&] { (void)load_profile(dir); }, errc::io, "not a regular file");
}

TEST_CASE("lenient where harmless: unknown keys, any entry order, threshold absent or null",
          "[profile_file]") {
  const auto p = small_profile();
  auto j = json::parse(saved(p));
  j["comment"] = "written by hand";
  j["heads"][0]["note"] = 1;
  std::swap(j["heads"][0], j["heads"][3]);
  CHECK(loaded(j.dump()) == p);
  j["threshold"] = nullptr;
  CHECK(std::isnan(loaded(j.dump()).threshold));
  j.erase("threshold");
  j.erase("model");
  const auto q = loaded(j.dump());
  CHECK(std::isnan(q.threshold));
  CHECK(q.model.empty());
  CHECK(q.heads == p.heads);
}

TEST_CASE("malformed profile files are clean errors naming the field and the entry",
          "[profile_file]") {
  const auto base = saved(small_profile());
  const auto io = [](const std::string& text, const std::string& fragment) {
    INFO("input: " << text.substr(0, 200));
    expect_error([&] { (void)loaded(text); }, errc::io, fragment);
  };
  const auto mutated = [&](const std::function<void(json&)>& f, const std::string& fragment) {
    auto j = json::parse(base);
    f(j);
    io(j.dump(), fragment);
  };

  SECTION("not JSON, or not an object") {
    io("", "not valid JSON");
    io("{", "not valid JSON");
    io(base + "x", "not valid JSON");
    io(std::string("\xff\xfe\x00\x01", 4), "not valid JSON");
    io("{\"format\": NaN}", "not valid JSON");
    io("null", "the root must be an object, not null");
    io("[1, 2]", "the root must be an object, not array");
    io("42", "the root must be an object, not number");
    io("\"kvsieve-head-profile\"", "the root must be an object, not string");
    io(std::string(100000, '['), "nested deeper than 16 levels");
    io("{\"a\": " + std::string(20, '[') + std::string(20, ']') + "}", "nested deeper");
    auto dup = base;
    dup.insert(dup.find("\"n_layer\""), "\"n_layer\": 7, ");
    io(dup, "duplicate key \"n_layer\"");
  }
  SECTION("truncated anywhere") {
    const auto end = base.rfind('}');
    for (std::size_t n = 0; n < end; ++n) {
      io(base.substr(0, n), "not valid JSON");
    }
  }
  SECTION("missing or mistyped top-level fields") {
    for (const char* key : {"format", "version", "ladder", "n_layer", "n_head_kv", "heads"}) {
      mutated([&](json& j) { j.erase(key); }, fmt::format("missing field '{}'", key));
    }
    mutated([](json& j) { j["format"] = "other"; }, "'format' is \"other\"");
    mutated([](json& j) { j["format"] = 1; }, "field 'format' must be a string, not number");
    mutated([](json& j) { j["version"] = 2; }, "'version' 2 is not 1");
    mutated([](json& j) { j["version"] = "1"; }, "field 'version' must be an integer, not string");
    mutated([](json& j) { j["version"] = 1.0; }, "field 'version' must be an integer");
    mutated([](json& j) { j["version"] = -1; }, "field 'version' -1 is outside");
    mutated([](json& j) { j["model"] = 5; }, "field 'model' must be a string, not number");
    mutated([](json& j) { j["threshold"] = "0.9"; }, "'threshold' must be a number or null");
    mutated([](json& j) { j["ladder"] = json::object(); }, "'ladder' must be an array");
    mutated([](json& j) { j["ladder"] = json::array(); }, "'ladder' has 0 candidates");
    mutated([](json& j) { j["ladder"] = std::vector<std::string>(300, "x"); },
            "'ladder' has 300 candidates, not 1 to 255");
    mutated([](json& j) { j["ladder"][1] = 7; }, "'ladder'[1] must be a string, not number");
    mutated([](json& j) { j["ladder"][0] = ""; }, "'ladder'[0] is an empty name");
    mutated([](json& j) { j["heads"] = json::object(); }, "'heads' must be an array, not object");
  }
  SECTION("geometry out of range, huge numbers") {
    mutated([](json& j) { j["n_layer"] = "2"; }, "field 'n_layer' must be an integer, not string");
    mutated([](json& j) { j["n_layer"] = 0; }, "field 'n_layer' 0 is outside [1, 2147483647]");
    mutated([](json& j) { j["n_layer"] = -3; }, "field 'n_layer' -3 is outside");
    mutated([](json& j) { j["n_layer"] = 2147483648LL; }, "field 'n_layer' 2147483648 is outside");
    mutated([](json& j) { j["n_head_kv"] = std::numeric_limits<std::uint64_t>::max(); },
            "field 'n_head_kv' 18446744073709551615 is outside");
    mutated([](json& j) { j["n_head_kv"] = 1e30; }, "field 'n_head_kv' must be an integer");
    io(std::string(base).replace(base.find("\"n_layer\": 2"), 12, "\"n_layer\": 1e400"),
       "not valid JSON");
    // A geometry of 2^62 heads with 4 entries: named as missing, nothing allocated for it.
    mutated(
        [](json& j) {
          j["n_layer"] = 2147483647;
          j["n_head_kv"] = 2147483647;
        },
        "no entry for layer 0, kv_head 2");
  }
  SECTION("entries: missing, repeated, too many, not objects") {
    mutated([](json& j) { j["heads"].erase(3); }, "'heads' has no entry for layer 1, kv_head 1");
    mutated([](json& j) { j["heads"].erase(0); }, "'heads' has no entry for layer 0, kv_head 0");
    mutated([](json& j) { j["heads"][2] = j["heads"][0]; },
            "heads[2] (layer 0, kv_head 0): repeats heads[0]");
    mutated([](json& j) { j["heads"].push_back(j["heads"][0]); },
            "5 entries in 'heads', more than n_layer x n_head_kv = 4");
    mutated([](json& j) { j["heads"][1] = 3; }, "heads[1]: must be an object, not number");
    mutated([](json& j) { j["heads"] = json::array(); }, "no entry for layer 0, kv_head 0");
  }
  SECTION("entries: every field missing or mistyped, indices out of range") {
    for (const char* key : {"choice", "policy", "budget", "prompt_length", "recovered"}) {
      mutated([&](json& j) { j["heads"][2].erase(key); },
              fmt::format("heads[2] (layer 1, kv_head 0): missing field '{}'", key));
    }
    for (const char* key : {"layer", "kv_head"}) {
      mutated([&](json& j) { j["heads"][2].erase(key); },
              fmt::format("heads[2]: missing field '{}'", key));
    }
    mutated([](json& j) { j["heads"][1]["layer"] = -1; },
            "heads[1]: field 'layer' -1 is outside [0, 1]");
    mutated([](json& j) { j["heads"][1]["layer"] = 2; },
            "heads[1]: field 'layer' 2 is outside [0, 1]");
    mutated([](json& j) { j["heads"][1]["kv_head"] = 9; }, "field 'kv_head' 9 is outside [0, 1]");
    mutated([](json& j) { j["heads"][1]["kv_head"] = 0.5; }, "field 'kv_head' must be an integer");
    mutated([](json& j) { j["heads"][1]["choice"] = -1; },
            "heads[1] (layer 0, kv_head 1): field 'choice' -1 is outside [0, 2]");
    mutated([](json& j) { j["heads"][1]["choice"] = 3; }, "field 'choice' 3 is outside [0, 2]");
    mutated([](json& j) { j["heads"][1]["choice"] = 1e30; }, "field 'choice' must be an integer");
    mutated([](json& j) { j["heads"][1]["choice"] = std::numeric_limits<std::uint64_t>::max(); },
            "field 'choice' 18446744073709551615 is outside");
    mutated([](json& j) { j["heads"][1]["choice"] = "1"; },
            "'choice' must be an integer, not string");
    mutated([](json& j) { j["heads"][1]["choice"] = nullptr; },
            "'choice' must be an integer, not null");
    mutated([](json& j) { j["heads"][1]["policy"] = "zzz"; },
            "heads[1] (layer 0, kv_head 1): 'policy' \"zzz\" is not ladder[1] \"special+punct\"");
    mutated([](json& j) { j["heads"][1]["policy"] = true; },
            "'policy' must be a string, not boolean");
    mutated([](json& j) { j["heads"][1]["policy"] = std::string(1 << 20, 'y'); },
            "'policy' \"yyyy");
    mutated([](json& j) { j["heads"][1]["budget"] = -2; }, "field 'budget' -2 is outside [-1, ");
    mutated([](json& j) { j["heads"][1]["budget"] = 2147483648LL; }, "field 'budget' 2147483648");
    mutated([](json& j) { j["heads"][1]["prompt_length"] = 0; },
            "field 'prompt_length' 0 is outside");
    mutated([](json& j) { j["heads"][1]["recovered"] = -0.5; },
            "'recovered' -0.5 is outside [0, 1]");
    mutated([](json& j) { j["heads"][1]["recovered"] = 2; }, "'recovered' 2 is outside [0, 1]");
    mutated([](json& j) { j["heads"][1]["recovered"] = "x"; },
            "'recovered' must be a number, not string");
    mutated([](json& j) { j["heads"][1]["recovered"] = nullptr; },
            "'recovered' must be a number, not null");
  }
}
