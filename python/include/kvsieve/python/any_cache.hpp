// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// any_cache: adaptive_cache behind one runtime interface, for the Python module, where the
/// policy (a name) and the storage element (a dtype string) arrive at run time. The virtual call
/// is paid once per prefill/decode of a layer, never inside the library's loops.
///   make_any_cache(settings, geometry, options, element, replay)   the cache with_named_policy
///                                                                  (cache/named_policy.hpp)
///                                                                  selects, or FastGen's ladder
///                                                                  replaying a head profile
///   make_model(element, ladder, profiler, geometry, options, T)    any ladder and profiler
///   policy_entry, abi_tag, abi_sizes    what a policy module (extension.hpp) hands kvsieve._core
/// No Python here: this header is shared by kvsieve._core and by users' policy modules, whose
/// caches cross into _core as any_cache pointers (hence the ABI tag).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <kvsieve/cache/named_policy.hpp>
#include <kvsieve/kvsieve.hpp>
#include <kvsieve/profile/profile_file.hpp>

namespace kvsieve::python {

/// The storage element of the cache's pages; arithmetic is float32 either way.
enum class element { float32, bfloat16 };

class any_cache {
public:
  any_cache() = default;
  any_cache(const any_cache&) = delete;
  auto operator=(const any_cache&) -> any_cache& = delete;
  virtual ~any_cache() = default;

  virtual void prefill(std::int32_t seq, std::int32_t layer, tensor_view<const float, 3> q,
                       tensor_view<const float, 3> k, tensor_view<const float, 3> v,
                       std::span<const token_class> classes, tensor_view<float, 3> out) = 0;
  virtual void decode(std::int32_t seq, std::int32_t layer, tensor_view<const float, 2> q,
                      tensor_view<const float, 2> k, tensor_view<const float, 2> v,
                      token_class cls, tensor_view<float, 2> out) = 0;
  virtual void release(std::int32_t seq) = 0;
  [[nodiscard]] virtual auto length(std::int32_t seq, std::int32_t layer) const -> std::int32_t = 0;
  [[nodiscard]] virtual auto report() const -> cache_report = 0;
  /// profile_of(cache, threshold, seq): the T is the one the profiler used (NaN: none).
  [[nodiscard]] virtual auto profile(std::int32_t seq) const -> head_profile = 0;
  [[nodiscard]] virtual auto ladder_names() const -> std::vector<std::string> = 0;
  [[nodiscard]] virtual auto geometry() const -> const store_geometry& = 0;
  [[nodiscard]] virtual auto options() const -> const cache_options& = 0;
};

namespace detail {

#define KVSIEVE_PYTHON_STR2(x) #x
#define KVSIEVE_PYTHON_STR(x) KVSIEVE_PYTHON_STR2(x)
#if defined(_LIBCPP_VERSION)
#define KVSIEVE_PYTHON_STDLIB "libc++"
#elif defined(__GLIBCXX__)
#define KVSIEVE_PYTHON_STDLIB "libstdc++ cxx11-abi " KVSIEVE_PYTHON_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define KVSIEVE_PYTHON_STDLIB "unknown standard library"
#endif

template <class Cache>
class cache_model final : public any_cache {
public:
  cache_model(Cache cache, double threshold) : cache_(std::move(cache)), threshold_(threshold) {}

  void prefill(std::int32_t seq, std::int32_t layer, tensor_view<const float, 3> q,
               tensor_view<const float, 3> k, tensor_view<const float, 3> v,
               std::span<const token_class> classes, tensor_view<float, 3> out) override {
    cache_.prefill(seq, layer, q, k, v, classes, out);
  }
  void decode(std::int32_t seq, std::int32_t layer, tensor_view<const float, 2> q,
              tensor_view<const float, 2> k, tensor_view<const float, 2> v, token_class cls,
              tensor_view<float, 2> out) override {
    cache_.decode(seq, layer, q, k, v, cls, out);
  }
  void release(std::int32_t seq) override { cache_.release(seq); }
  [[nodiscard]] auto length(std::int32_t seq, std::int32_t layer) const -> std::int32_t override {
    return cache_.length(seq, layer);
  }
  [[nodiscard]] auto report() const -> cache_report override { return cache_.report(); }
  [[nodiscard]] auto profile(std::int32_t seq) const -> head_profile override {
    return profile_of(cache_, threshold_, seq);
  }
  [[nodiscard]] auto ladder_names() const -> std::vector<std::string> override {
    using ladder = typename Cache::ladder_type;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < ladder::size; ++i) {
      names.emplace_back(ladder::name(i));
    }
    return names;
  }
  [[nodiscard]] auto geometry() const -> const store_geometry& override {
    return cache_.store().geometry();
  }
  [[nodiscard]] auto options() const -> const cache_options& override { return cache_.options(); }

private:
  Cache cache_;
  double threshold_;
};

template <class T, class Ladder, class Profiler>
auto make_model(Ladder ladder, Profiler profiler, const store_geometry& g,
                const cache_options& o, double threshold) -> std::unique_ptr<any_cache> {
  using cache = adaptive_cache<Ladder, Profiler, paged_store<T>>;
  return std::make_unique<cache_model<cache>>(
      cache(std::move(ladder), std::move(profiler), g, o), threshold);
}

} // namespace detail

/// The cache of any ladder and profiler (a policy module's factory returns one); `threshold` is
/// the T recorded by profile() (NaN: none).
template <class Ladder, class Profiler>
[[nodiscard]] auto make_model(element e, Ladder ladder, Profiler profiler, const store_geometry& g,
                              const cache_options& o, double threshold)
    -> std::unique_ptr<any_cache> {
  if (e == element::bfloat16) {
    return detail::make_model<bfloat16>(std::move(ladder), std::move(profiler), g, o, threshold);
  }
  return detail::make_model<float>(std::move(ladder), std::move(profiler), g, o, threshold);
}

/// Both sides of an any_cache pointer must agree on the layout of everything that crosses (the
/// settings, geometry, options and report, std::string and std::vector inside them, the vtable):
/// the same kvsieve version and the same C++ standard library ABI. Compilers may differ.
inline constexpr const char* abi_tag =
    "kvsieve-python-abi 1; kvsieve " KVSIEVE_PYTHON_STR(KVSIEVE_VERSION_MAJOR) "." KVSIEVE_PYTHON_STR(
        KVSIEVE_VERSION_MINOR) "." KVSIEVE_PYTHON_STR(KVSIEVE_VERSION_PATCH) "; " KVSIEVE_PYTHON_STDLIB;
inline constexpr std::size_t abi_sizes[5] = {sizeof(policy_settings), sizeof(store_geometry),
                                             sizeof(cache_options), sizeof(cache_report),
                                             sizeof(head_profile)};

/// One policy of a policy module, as it reaches kvsieve._core in a PyCapsule named
/// policy_entry::capsule_name. `make` returns a new cache (the caller owns it) or throws
/// kvsieve::error for bad settings.
struct policy_entry {
  static constexpr const char* capsule_name = "kvsieve.python.policy_entry";
  const char* abi;
  std::size_t sizes[5];
  any_cache* (*make)(const policy_settings&, const store_geometry&, const cache_options&,
                     element);
};

/// The cache `s` names, or with `replay` FastGen's ladder replaying that profile (then s.name
/// must be "fastgen"). Throws kvsieve::error (errc::invalid_argument) for an unknown name, bad
/// parameters, a bad geometry or options, a profile whose ladder or geometry differs.
[[nodiscard]] inline auto make_any_cache(const policy_settings& s, const store_geometry& g,
                                         const cache_options& o, element e,
                                         const std::optional<head_profile>& replay)
    -> std::unique_ptr<any_cache> {
  constexpr double no_threshold = std::numeric_limits<double>::quiet_NaN();
  if (replay) {
    expects(s.name == "fastgen", errc::invalid_argument, [&] {
      return fmt::format("a head profile replays FastGen's ladder: use policy='fastgen', not '{}'",
                         s.name);
    });
    auto ladder = named_fastgen_ladder(s);
    check_compatible(*replay, ladder, g);
    return make_model(e, std::move(ladder), replay_profiler(*replay), g, o, no_threshold);
  }
  return with_named_policy(s, [&](auto ladder, auto profiler) {
    return make_model(e, std::move(ladder), std::move(profiler), g, o,
                              s.name == "fastgen" ? s.threshold : no_threshold);
  });
}

} // namespace kvsieve::python
