// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// kvsieve._core: the adaptive cache for Python (nanobind): the host cache, and where the module
// was built with CUDA the device cache of device_cache.hpp behind the same class, chosen by its
// `device` (without CUDA, no_device_cache.cpp answers for device_cache.hpp). The package kvsieve
// wraps it (python/kvsieve/): outputs are allocated there, in the caller's array library.
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/operators.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <kvsieve/python/any_cache.hpp>

#include "arrays.hpp"
#include "device_cache.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace kvsieve::python {
namespace {

// ---- errors: kvsieve::error -> a kvsieve.Error subclass that also derives from the builtin a
// Python caller would catch (ValueError for bad arguments, OSError for files, ...).
struct error_types {
  nb::object base;
  std::array<nb::object, 7> by_code; // indexed by errc
};

auto errors() -> error_types& {
  static error_types* e = new error_types(); // never destroyed: lives as long as the interpreter
  return *e;
}

auto new_exception(const char* name, std::initializer_list<PyObject*> bases, const char* doc)
    -> nb::object {
  nb::object tuple = nb::steal(PyTuple_New(static_cast<Py_ssize_t>(bases.size())));
  Py_ssize_t i = 0;
  for (PyObject* b : bases) {
    Py_INCREF(b);
    PyTuple_SET_ITEM(tuple.ptr(), i++, b);
  }
  PyObject* type = PyErr_NewExceptionWithDoc(name, doc, tuple.ptr(), nullptr);
  if (type == nullptr) {
    throw nb::python_error();
  }
  return nb::steal(type);
}

void register_errors(nb::module_& m) {
  auto& e = errors();
  // Named after the module as imported ("kvsieve._core", or "_core" when stubgen imports it
  // alone), so that the stub generator lists them; kvsieve/__init__.py shows them as kvsieve.*.
  const std::string prefix = nb::cast<std::string>(m.attr("__name__"));
  e.base = new_exception((prefix + ".Error").c_str(), {PyExc_Exception},
                         "Every error kvsieve raises; the message is kvsieve's.");
  const auto sub = [&](errc code, const char* name, PyObject* builtin, const char* doc) {
    auto type = new_exception(fmt::format("{}.{}", prefix, name).c_str(), {e.base.ptr(), builtin},
                              doc);
    e.by_code[static_cast<std::size_t>(code)] = type;
    m.attr(name) = type;
  };
  m.attr("Error") = e.base;
  sub(errc::invalid_argument, "InvalidArgumentError", PyExc_ValueError,
      "A value outside its documented range (T, ratios, budgets, token classes).");
  sub(errc::shape_mismatch, "ShapeError", PyExc_ValueError,
      "Array extents disagree with the cache's geometry.");
  sub(errc::out_of_range, "OutOfRangeError", PyExc_IndexError,
      "A sequence, layer or head index past its bound.");
  sub(errc::bad_state, "StateError", PyExc_RuntimeError,
      "An operation in the wrong order (decode before prefill, prefill twice).");
  sub(errc::out_of_memory, "OutOfMemoryError", PyExc_MemoryError,
      "The page pool is exhausted (max_pages); the cache is left unchanged.");
  sub(errc::io, "FileError", PyExc_OSError, "A head-profile file could not be read or parsed.");
  sub(errc::device, "DeviceError", PyExc_RuntimeError, "The CUDA runtime reported an error.");
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const kvsieve::error& err) {
      PyErr_SetString(errors().by_code[static_cast<std::size_t>(err.code())].ptr(), err.what());
    }
  });
}

// ---- policies from policy modules (kvsieve/python/extension.hpp) ---------------------------

struct registered_policy {
  nb::object capsule; // owns the entry
  const policy_entry* entry;
  std::string description;
};

auto registered() -> std::map<std::string, registered_policy, std::less<>>& {
  static auto* m = new std::map<std::string, registered_policy, std::less<>>(); // never destroyed
  return *m;
}

void register_policy(const std::string& name, const std::string& description,
                     nb::handle capsule) {
  if (PyCapsule_IsValid(capsule.ptr(), policy_entry::capsule_name) == 0) {
    throw nb::type_error(fmt::format("_register_policy('{}'): expected a capsule named '{}' "
                                     "(kvsieve/python/extension.hpp), got {}",
                                     name, policy_entry::capsule_name,
                                     nb::inst_name(capsule).c_str())
                             .c_str());
  }
  const auto* e =
      static_cast<const policy_entry*>(PyCapsule_GetPointer(capsule.ptr(),
                                                            policy_entry::capsule_name));
  if (e->abi == nullptr || std::string_view(e->abi) != abi_tag ||
      !std::equal(std::begin(abi_sizes), std::end(abi_sizes), std::begin(e->sizes)) ||
      e->make == nullptr) {
    throw nb::import_error(
        fmt::format("policy '{}' was built for '{}' (sizes {}), but kvsieve._core is '{}' (sizes "
                    "{}): rebuild the module against the installed kvsieve (python -m kvsieve "
                    "--cmake-dir)",
                    name, e->abi == nullptr ? "?" : e->abi, fmt::join(e->sizes, ","), abi_tag,
                    fmt::join(abi_sizes, ","))
            .c_str());
  }
  expects(!name.empty() && name.find_first_of(" \t\n") == std::string::npos,
          errc::invalid_argument,
          [&] { return fmt::format("a policy name must be non-empty, without spaces: '{}'", name); });
  expects(!is_policy_name(name), errc::invalid_argument,
          [&] { return fmt::format("policy '{}' is built in; choose another name", name); });
  expects(!registered().contains(name), errc::invalid_argument, [&] {
    return fmt::format("policy '{}' is already registered by another module", name);
  });
  registered().emplace(name, registered_policy{nb::borrow(capsule), e, description});
}

void unregister_policy(const std::string& name) { registered().erase(name); }

auto all_policy_names() -> std::vector<std::string> {
  std::vector<std::string> names(std::begin(policy_names), std::end(policy_names));
  for (const auto& [name, p] : registered()) {
    names.push_back(name);
  }
  return names;
}

// ---- the cache ----------------------------------------------------------------------------

auto parse_element(const std::string& dtype) -> element {
  if (dtype == "float32") {
    return element::float32;
  }
  if (dtype == "bfloat16") {
    return element::bfloat16;
  }
  raise(errc::invalid_argument,
        fmt::format("dtype '{}' is not a storage element: 'float32' or 'bfloat16'", dtype));
}

auto parse_group(const std::string& group) -> group_reduce {
  if (group == "mean") {
    return group_reduce::mean;
  }
  if (group == "worst") {
    return group_reduce::worst;
  }
  raise(errc::invalid_argument,
        fmt::format("group '{}' is not a group reduction: 'mean' or 'worst'", group));
}

/// The Python-facing cache: any_cache (device < 0) or device_cache (CUDA device `device`), plus
/// the host cache's thread pool, a lock (the GIL is released during compute, and adaptive_cache
/// is not thread-safe) and the host's bfloat16 staging buffers.
class py_cache {
public:
  py_cache(std::int32_t n_layer, std::int32_t n_head_kv, std::int32_t head_dim,
           std::int32_t n_head_q, std::int32_t n_seq, std::int32_t page_size,
           std::size_t max_pages, const std::string& policy, double threshold, double local_ratio,
           double frequent_ratio, std::int32_t window, std::int32_t budget, std::int32_t n_sinks,
           float scale, const std::string& group, const std::string& dtype, std::int32_t threads,
           const std::optional<head_profile>& profile, std::int32_t max_context,
           std::int32_t device, std::uintptr_t stream)
      : element_(parse_element(dtype)), dtype_(dtype), policy_(policy) {
    expects(threads >= 1 && threads <= 256, errc::invalid_argument,
            [&] { return fmt::format("threads must be in [1, 256], got {}", threads); });
    expects(page_size >= 1, errc::invalid_argument,
            [&] { return fmt::format("page_size must be >= 1, got {}", page_size); });
    pool_ = std::make_unique<thread_pool>(static_cast<std::size_t>(threads));
    const policy_settings s{.name = policy,
                            .threshold = threshold,
                            .local_ratio = local_ratio,
                            .frequent_ratio = frequent_ratio,
                            .window = window,
                            .budget = budget};
    const store_geometry g{.n_seq = n_seq,
                           .n_layer = n_layer,
                           .n_head_kv = n_head_kv,
                           .head_dim = head_dim,
                           .page_size = page_size,
                           .max_pages = max_pages,
                           .max_context = max_context};
    const cache_options o{.n_head_q = n_head_q,
                          .scale = scale,
                          .n_sinks = n_sinks,
                          .group = parse_group(group),
                          .threads = pool_.get()};
    if (device >= 0) {
      make_device(s, g, o, profile, device, stream);
      return;
    }
    if (const auto it = registered().find(policy); it != registered().end()) {
      expects(!profile, errc::invalid_argument, [&] {
        return fmt::format("a head profile replays FastGen's ladder: use policy='fastgen', not "
                           "'{}'",
                           policy);
      });
      cache_.reset(it->second.entry->make(s, g, o, element_));
    } else {
      expects(is_policy_name(policy), errc::invalid_argument, [&] {
        return fmt::format("unknown policy '{}' (one of: {})", policy,
                           fmt::join(all_policy_names(), ", "));
      });
      cache_ = make_any_cache(s, g, o, element_, profile);
    }
  }

  void prefill(std::int32_t layer, const in_array& q, const in_array& k, const in_array& v,
               const nb::ndarray<nb::ro, std::uint8_t, nb::ndim<1>, nb::c_contig,
                                 nb::device::cpu>& classes,
               const out_array& out, std::int32_t seq, std::uintptr_t stream) {
    const auto at = place();
    const auto d = same_dtype("prefill", {checked("q", q, 3, at), checked("k", k, 3, at),
                                          checked("v", v, 3, at), checked("out", out, 3, at)});
    const auto* cls = reinterpret_cast<const token_class*>(classes.data());
    check_classes(classes.data(), classes.shape(0));
    nb::gil_scoped_release unlocked;
    const std::lock_guard lock(mutex_);
    if (device_cache_) {
      device_cache_->prefill(seq, layer, on_device(q, d), on_device(k, d), on_device(v, d),
                             {cls, classes.shape(0)}, on_device(out, d), stream);
      return;
    }
    auto qv = float_view<3>(q, d, bq_);
    auto kv = float_view<3>(k, d, bk_);
    auto vv = float_view<3>(v, d, bv_);
    auto ov = float_out<3>(out, d, bo_);
    cache_->prefill(seq, layer, qv, kv, vv, {cls, classes.shape(0)}, ov);
    narrow_into(out, d, bo_);
  }

  void decode(std::int32_t layer, const in_array& q, const in_array& k, const in_array& v,
              std::uint8_t cls, const out_array& out, std::int32_t seq, std::uintptr_t stream) {
    const auto at = place();
    const auto d = same_dtype("decode", {checked("q", q, 2, at), checked("k", k, 2, at),
                                         checked("v", v, 2, at), checked("out", out, 2, at)});
    check_classes(&cls, 1);
    nb::gil_scoped_release unlocked;
    const std::lock_guard lock(mutex_);
    if (device_cache_) {
      device_cache_->decode(seq, layer, on_device(q, d), on_device(k, d), on_device(v, d),
                            static_cast<token_class>(cls), on_device(out, d), stream);
      return;
    }
    auto qv = float_view<2>(q, d, bq_);
    auto kv = float_view<2>(k, d, bk_);
    auto vv = float_view<2>(v, d, bv_);
    auto ov = float_out<2>(out, d, bo_);
    cache_->decode(seq, layer, qv, kv, vv, static_cast<token_class>(cls), ov);
    narrow_into(out, d, bo_);
  }

  // The rest: the same call on whichever cache this is (report and release synchronise the
  // device cache's stream; the GIL is released while they wait).
  void release(std::int32_t seq) {
    nb::gil_scoped_release unlocked;
    const std::lock_guard lock(mutex_);
    backend([&](auto& c) { c.release(seq); });
  }
  [[nodiscard]] auto length(std::int32_t seq, std::int32_t layer) -> std::int32_t {
    const std::lock_guard lock(mutex_);
    return backend([&](auto& c) { return c.length(seq, layer); });
  }
  [[nodiscard]] auto report() -> cache_report {
    nb::gil_scoped_release unlocked;
    const std::lock_guard lock(mutex_);
    return backend([&](auto& c) { return c.report(); });
  }
  [[nodiscard]] auto profile(std::int32_t seq) -> head_profile {
    const std::lock_guard lock(mutex_);
    return backend([&](auto& c) { return c.profile(seq); });
  }
  /// Waits for the device cache's stream and raises its pending decode error; nothing on the host.
  void synchronize() {
    nb::gil_scoped_release unlocked;
    const std::lock_guard lock(mutex_);
    if (device_cache_) {
      device_cache_->synchronize();
    }
  }
  /// Acknowledges the device cache's pending decode error; nothing on the host (whose errors are
  /// never pending).
  void clear_error() {
    nb::gil_scoped_release unlocked;
    const std::lock_guard lock(mutex_);
    if (device_cache_) {
      device_cache_->clear_error();
    }
  }
  [[nodiscard]] auto ladder() const -> std::vector<std::string> {
    return const_backend([](const auto& c) { return c.ladder_names(); });
  }
  [[nodiscard]] auto geometry() const -> const store_geometry& {
    return const_backend([](const auto& c) -> const store_geometry& { return c.geometry(); });
  }
  [[nodiscard]] auto n_head_q() const -> std::int32_t {
    return const_backend([](const auto& c) { return c.options().n_head_q; });
  }
  [[nodiscard]] auto n_sinks() const -> std::int32_t {
    return const_backend([](const auto& c) { return c.options().n_sinks; });
  }
  [[nodiscard]] auto dtype() const -> const std::string& { return dtype_; }
  [[nodiscard]] auto policy() const -> const std::string& { return policy_; }
  [[nodiscard]] auto threads() const -> std::size_t { return pool_->size(); }
  /// "cpu" or "cuda:N".
  [[nodiscard]] auto device() const -> std::string {
    const auto at = place();
    return place_name(at.device_type, at.device_id);
  }

private:
  [[nodiscard]] auto place() const -> array_place {
    if (device_cache_) {
      return {nb::device::cuda::value, device_cache_->device()};
    }
    return {};
  }

  // f(cache) on the device cache or the host cache; both answer the same calls. (A declared
  // return type: the callers above are compiled before this body.)
  template <class F>
  auto backend(F&& f) -> decltype(f(std::declval<any_cache&>())) {
    if (device_cache_) {
      return f(*device_cache_);
    }
    return f(*cache_);
  }
  template <class F>
  auto const_backend(F&& f) const -> decltype(f(std::declval<const any_cache&>())) {
    if (device_cache_) {
      return f(std::as_const(*device_cache_));
    }
    return f(std::as_const(*cache_));
  }

  void make_device(const policy_settings& s, const store_geometry& g, const cache_options& o,
                   const std::optional<head_profile>& profile, std::int32_t device,
                   std::uintptr_t stream) {
    expects(!registered().contains(s.name), errc::invalid_argument, [&] {
      return fmt::format("policy '{}' comes from a policy module, which builds host caches only; "
                         "use device='cpu'",
                         s.name);
    });
    expects(is_policy_name(s.name), errc::invalid_argument, [&] {
      return fmt::format("unknown policy '{}' (one of: {})", s.name,
                         fmt::join(all_policy_names(), ", "));
    });
    const nb::gil_scoped_release unlocked; // the pool's allocation and first CUDA call may be slow
    device_cache_ = make_device_cache(s, g, o, element_, profile, device, stream);
  }

  template <class Array>
  static auto on_device(const Array& a, array_dtype d) -> device_array {
    device_array out;
    out.data = const_cast<void*>(static_cast<const void*>(a.data()));
    out.bfloat16 = d == array_dtype::bfloat16;
    out.rank = a.ndim();
    for (std::size_t i = 0; i < out.rank; ++i) {
      out.shape[i] = a.shape(i);
    }
    return out;
  }


  static auto same_dtype(const char* call, std::initializer_list<array_dtype> ds) -> array_dtype {
    const array_dtype first = *ds.begin();
    for (const auto d : ds) {
      if (d != first) {
        throw nb::type_error(fmt::format("{}: q, k, v and out must share one dtype (float32 or "
                                         "bfloat16); q is {}",
                                         call, dtype_name(first))
                                 .c_str());
      }
    }
    return first;
  }

  static void check_classes(const std::uint8_t* c, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      expects(c[i] <= 3, errc::invalid_argument, [&] {
        return fmt::format("token class {} at index {} is not a TokenClass (bits: 1 special, 2 "
                           "punctuation)",
                           c[i], i);
      });
    }
  }

  std::unique_ptr<thread_pool> pool_; // before cache_: the cache borrows it
  std::unique_ptr<any_cache> cache_;
  std::unique_ptr<device_cache> device_cache_; // instead of cache_ on a CUDA device
  element element_;
  std::string dtype_;
  std::string policy_;
  std::mutex mutex_;
  std::vector<float> bq_, bk_, bv_, bo_; // bfloat16 staging, [elements of q, k, v, out]
};

auto profile_from_string(const std::string& text) -> head_profile {
  std::istringstream in(text);
  return load_profile(in, "head profile");
}

void bind_reports(nb::module_& m) {
  nb::class_<head_report>(m, "HeadReport", "One KV head of a Report.")
      .def_prop_ro("seq", [](const head_report& h) { return h.head.seq; })
      .def_prop_ro("layer", [](const head_report& h) { return h.head.layer; })
      .def_prop_ro("kv_head", [](const head_report& h) { return h.head.head; })
      .def_ro("choice", &head_report::choice, "Index of the chosen candidate in the ladder.")
      .def_prop_ro("policy", [](const head_report& h) { return std::string(h.policy); },
                   "The chosen candidate's name.")
      .def_prop_ro("label", &head_report::label,
                   "'name' or 'name[k=budget]' ('!' when the profiler fixed the budget).")
      .def_ro("kept", &head_report::kept, "Resident tokens.")
      .def_ro("length", &head_report::length, "Tokens seen (prompt + generated).")
      .def_ro("recovered", &head_report::recovered,
              "Recovered prompt attention of the chosen candidate.")
      .def_ro("candidates", &head_report::candidates,
              "Recovered prompt attention of every candidate, in ladder order.")
      .def_ro("budget", &head_report::budget,
              "Budget in tokens at the end of prefill (-1: the candidate has none).")
      .def_ro("fixed_budget", &head_report::fixed_budget, "The profiler fixed `budget`.")
      .def("__repr__", [](const head_report& h) {
        return fmt::format("HeadReport(seq={}, layer={}, kv_head={}, policy='{}', kept={}, "
                           "length={})",
                           h.head.seq, h.head.layer, h.head.head, h.label(), h.kept, h.length);
      });
  nb::class_<cache_report>(m, "Report", "Memory and choices of every prefilled (seq, layer).")
      .def_ro("heads", &cache_report::heads)
      .def_prop_ro("policy_counts",
                   [](const cache_report& r) {
                     nb::dict d;
                     for (const auto& [name, n] : r.policy_counts) {
                       d[nb::str(name.data(), name.size())] = n;
                     }
                     return d;
                   },
                   "Ladder names with how many KV heads chose each, in ladder order.")
      .def_ro("bytes_resident", &cache_report::bytes_resident,
              "Bytes of the pages in use (K, V, metadata, partial pages).")
      .def_ro("bytes_full", &cache_report::bytes_full,
              "Bytes the same paged layout would use with no eviction.")
      .def_ro("kv_bytes_kept", &cache_report::kv_bytes_kept, "K and V of the resident tokens.")
      .def_ro("kv_bytes_full", &cache_report::kv_bytes_full, "K and V of every token seen.")
      .def_ro("mean_kept_fraction", &cache_report::mean_kept_fraction,
              "Mean over decode steps of kept / seen tokens (1 without decode steps).")
      .def_ro("prefill_attention_seconds", &cache_report::prefill_attention_seconds)
      .def_ro("profile_seconds", &cache_report::profile_seconds)
      .def_prop_ro("saved_fraction", &cache_report::saved_fraction,
                   "1 - bytes_resident / bytes_full.")
      .def("__repr__", [](const cache_report& r) {
        return fmt::format("Report(heads={}, bytes_resident={}, bytes_full={}, saved={:.3f})",
                           r.heads.size(), r.bytes_resident, r.bytes_full, r.saved_fraction());
      });
}

void bind_profiles(nb::module_& m) {
  nb::class_<profiled_head>(m, "ProfiledHead", "One KV head's entry in a HeadProfile.")
      .def(nb::init<>())
      .def_rw("layer", &profiled_head::layer)
      .def_rw("kv_head", &profiled_head::kv_head)
      .def_rw("choice", &profiled_head::choice)
      .def_rw("policy", &profiled_head::policy)
      .def_rw("budget", &profiled_head::budget)
      .def_rw("prompt_length", &profiled_head::prompt_length)
      .def_rw("recovered", &profiled_head::recovered)
      .def(nb::self == nb::self);
  nb::class_<head_profile>(m, "HeadProfile",
                           "Every KV head's choice for one model and ladder (a head-profile "
                           "file, kvsieve-head-profile version 1).")
      .def(nb::init<>())
      .def_rw("ladder", &head_profile::ladder)
      .def_rw("threshold", &head_profile::threshold, "The T that produced it (NaN: none).")
      .def_rw("n_layer", &head_profile::n_layer)
      .def_rw("n_head_kv", &head_profile::n_head_kv)
      .def_rw("heads", &head_profile::heads)
      .def_rw("model", &head_profile::model)
      .def("at", &head_profile::at, "layer"_a, "kv_head"_a, nb::rv_policy::copy)
      .def("to_json", [](const head_profile& p) { return to_json(p).dump(2); })
      .def_static("from_json", &profile_from_string, "text"_a,
                  "Parses a profile (untrusted input); raises FileError naming the problem.")
      .def("save", [](const head_profile& p, const std::filesystem::path& f) { save_profile(p, f); },
           "path"_a)
      .def_static("load",
                  [](const std::filesystem::path& f) { return load_profile(f); }, "path"_a)
      .def(nb::self == nb::self);
}

void bind_cache(nb::module_& m) {
  nb::class_<py_cache>(m, "Cache",
                       "kvsieve's adaptive cache, on the host or a CUDA device; see kvsieve.Cache "
                       "for the documented API.")
      .def(nb::init<std::int32_t, std::int32_t, std::int32_t, std::int32_t, std::int32_t,
                    std::int32_t, std::size_t, const std::string&, double, double, double,
                    std::int32_t, std::int32_t, std::int32_t, float, const std::string&,
                    const std::string&, std::int32_t, const std::optional<head_profile>&,
                    std::int32_t, std::int32_t, std::uintptr_t>(),
           "n_layer"_a, "n_head_kv"_a, "head_dim"_a, nb::kw_only(), "n_head_q"_a = 0,
           "n_seq"_a = 1, "page_size"_a = 16, "max_pages"_a = 0, "policy"_a = "fastgen",
           "threshold"_a = 0.95, "local_ratio"_a = 0.3, "frequent_ratio"_a = 0.3,
           "window"_a = 256, "budget"_a = 256, "n_sinks"_a = 0, "scale"_a = 0.0F,
           "group"_a = "mean", "dtype"_a = "float32", "threads"_a = 1,
           "profile"_a = nb::none(), "max_context"_a = 0, "device"_a = -1, "stream"_a = 0,
           "device: -1 for the host cache, else the CUDA device ordinal; stream: the cudaStream_t "
           "(as an integer, 0: the legacy default stream) the device cache orders its work on.")
      .def("prefill_into", &py_cache::prefill, "layer"_a, "q"_a, "k"_a, "v"_a, "classes"_a,
           "out"_a, "seq"_a = 0, "stream"_a = 0,
           "kvsieve.Cache.prefill with every argument given: classes a uint8 array [L] (host), "
           "out the output array (written in place), stream the caller's cudaStream_t (device "
           "cache only).")
      .def("decode_into", &py_cache::decode, "layer"_a, "q"_a, "k"_a, "v"_a, "token_class"_a,
           "out"_a, "seq"_a = 0, "stream"_a = 0,
           "kvsieve.Cache.decode with every argument given: out the output array (written in "
           "place), stream the caller's cudaStream_t (device cache only).")
      .def("release", &py_cache::release, "seq"_a = 0,
           "Frees every page of sequence `seq`; it can be prefilled again.")
      .def("length", &py_cache::length, "seq"_a = 0, "layer"_a = 0,
           "Tokens seen by (seq, layer): 0 before prefill.")
      .def("report", &py_cache::report, "Choices, memory and timings of every prefilled layer.")
      .def("profile", &py_cache::profile, "seq"_a = 0,
           "Every KV head's choice on sequence `seq` (after prefill, before decode).")
      .def("synchronize", &py_cache::synchronize,
           "Waits for the device cache's work and raises a pending decode error (no-op on the "
           "host).")
      .def("clear_error", &py_cache::clear_error,
           "Acknowledges the device cache's pending decode error; the failed steps changed "
           "nothing (no-op on the host).")
      .def_prop_ro("ladder", &py_cache::ladder, "The candidate names, in ladder order.")
      .def_prop_ro("n_layer", [](const py_cache& c) { return c.geometry().n_layer; })
      .def_prop_ro("n_head_kv", [](const py_cache& c) { return c.geometry().n_head_kv; })
      .def_prop_ro("n_head_q", &py_cache::n_head_q)
      .def_prop_ro("head_dim", [](const py_cache& c) { return c.geometry().head_dim; })
      .def_prop_ro("n_seq", [](const py_cache& c) { return c.geometry().n_seq; })
      .def_prop_ro("page_size", [](const py_cache& c) { return c.geometry().page_size; })
      .def_prop_ro("n_sinks", &py_cache::n_sinks)
      .def_prop_ro("dtype", &py_cache::dtype, "The pages' storage element.")
      .def_prop_ro("policy", &py_cache::policy)
      .def_prop_ro("threads", &py_cache::threads)
      .def_prop_ro("device", &py_cache::device, "'cpu' or 'cuda:N'.");
}

} // namespace
} // namespace kvsieve::python

NB_MODULE(_core, m) {
  using namespace kvsieve::python;
  m.doc() = "kvsieve's C++ core: the adaptive KV cache (FastGen and the field's policies), on the "
            "host and, where built with CUDA, on a CUDA device.";
  register_errors(m);
  bind_reports(m);
  bind_profiles(m);
  bind_cache(m);
  nb::list names;
  for (const auto name : kvsieve::policy_names) {
    names.append(nb::str(name.data(), name.size()));
  }
  m.attr("builtin_policy_names") = nb::tuple(names);
  nb::list device_names;
  for (const auto& name : kvsieve::python::device_policy_names()) {
    device_names.append(nb::str(name.data(), name.size()));
  }
  m.attr("cuda_policy_names") = nb::tuple(device_names);
  m.def(
      "cuda_built", [] { return kvsieve::python::device_built(); },
      "Whether this module was built with its CUDA cache (a CUDA compiler at build time).");
  m.def(
      "cuda_available",
      [] { return kvsieve::python::device_built() && kvsieve::python::device_count() > 0; },
      "Whether device='cuda' can work: built with CUDA and a CUDA device is visible.");
  m.def("_register_policy", &register_policy, "name"_a, "description"_a, "entry"_a,
        "Called by a policy module's import (kvsieve/python/extension.hpp); not for users.");
  m.def("_unregister_policy", &unregister_policy, "name"_a,
        "Takes back a policy whose module failed to import; not for users.");
  m.def(
      "_registered_entry",
      [](const std::string& name) -> nb::object {
        const auto it = registered().find(name);
        return it == registered().end() ? nb::none() : it->second.capsule;
      },
      "name"_a, "The capsule a policy module registered `name` with (None: none); for tests.");
  m.def(
      "registered_policies",
      [] {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& [name, p] : registered()) {
          out.emplace_back(name, p.description);
        }
        return out;
      },
      "(name, description) of every policy registered by an imported policy module.");
}
