// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// A Python module of your own kvsieve policies (a ladder and a profiler per name), usable by
/// name everywhere the kvsieve package takes a policy once the module is imported:
///
///   KVSIEVE_PYTHON_POLICIES(my_policies, registry) {
///     registry.add("every_8th", "positions divisible by 8, else a local window, else full",
///                  [](const kvsieve::policy_settings& s) {
///                    return std::pair{my_ladder(...), kvsieve::recovery_profiler(s.threshold)};
///                  });
///   }
///
///   import kvsieve, my_policies
///   kvsieve.Cache(4, 2, 64, policy="every_8th", threshold=0.9)   # or kvsieve.hf.Cache(model, ...)
///
/// Build it with kvsieve_add_python_policies(my_policies source.cpp) (kvsieve_python.cmake); the
/// module name must be the first argument of KVSIEVE_PYTHON_POLICIES. A factory is a captureless
/// lambda (or any default-constructible callable) from the cache's policy_settings (threshold,
/// local_ratio, frequent_ratio, window, budget as passed to kvsieve.Cache) to a pair (ladder,
/// profiler); it may throw kvsieve::error for settings it rejects, which Python sees as
/// kvsieve.InvalidArgumentError. Importing the module fails with ImportError, naming both
/// sides, when it was built against another kvsieve version or C++ standard library ABI than
/// the installed kvsieve._core, or when a name is taken (a built-in or another module's).
/// The module object lists its names in `policy_names`.

#include <Python.h>

#include <cstddef>
#include <exception>
#include <iterator>
#include <type_traits>
#include <utility>

#include <kvsieve/python/any_cache.hpp>

namespace kvsieve::python {

class policy_registry {
public:
  explicit policy_registry(PyObject* module) : module_(module) {}

  /// Registers `name` with kvsieve._core. Throws policy_registry::python_error (a Python error
  /// is set) when _core refuses it.
  template <class Factory>
  void add(const char* name, const char* description, Factory) {
    static_assert(std::is_default_constructible_v<Factory>,
                  "kvsieve::python::policy_registry::add: the factory must be a captureless "
                  "lambda or another default-constructible callable (it is called later, when "
                  "a cache is made)");
    static_assert(std::is_invocable_v<const Factory&, const policy_settings&>,
                  "kvsieve::python::policy_registry::add: the factory takes "
                  "const kvsieve::policy_settings& and returns std::pair{ladder, profiler}");
    // One entry per (module, name): a static of this instantiation would be shared by two names
    // added with the same lambda type, so the entry lives as long as the module's capsule.
    auto* entry = new policy_entry{abi_tag, {}, &make<Factory>};
    for (std::size_t i = 0; i < std::size(abi_sizes); ++i) {
      entry->sizes[i] = abi_sizes[i];
    }
    PyObject* capsule = PyCapsule_New(entry, policy_entry::capsule_name, [](PyObject* c) {
      delete static_cast<policy_entry*>(PyCapsule_GetPointer(c, policy_entry::capsule_name));
    });
    if (capsule == nullptr) {
      delete entry;
      throw python_error();
    }
    PyObject* result = PyObject_CallMethod(core(), "_register_policy", "ssO", name, description,
                                           capsule);
    Py_DECREF(capsule);
    if (result == nullptr) {
      throw python_error();
    }
    Py_DECREF(result);
    PyObject* n = PyUnicode_FromString(name);
    if (n == nullptr || PyList_Append(names(), n) != 0) {
      Py_XDECREF(n);
      throw python_error();
    }
    Py_DECREF(n);
  }

  /// Thrown when a Python exception is set; KVSIEVE_PYTHON_POLICIES lets it through as is.
  struct python_error : std::exception {
    [[nodiscard]] auto what() const noexcept -> const char* override {
      return "kvsieve: a Python error is set";
    }
  };

  /// Publishes policy_names on the module; called once, after the registration function.
  void finish() {
    if (names_ != nullptr) {
      PyObject* t = PyList_AsTuple(names_);
      if (t == nullptr || PyModule_AddObject(module_, "policy_names", t) != 0) {
        Py_XDECREF(t);
        throw python_error();
      }
    }
  }

  /// Takes back every name this module registered (its import failed); keeps the error set.
  void rollback() noexcept {
    if (names_ == nullptr || core_ == nullptr) {
      return;
    }
    PyObject *type = nullptr, *value = nullptr, *trace = nullptr;
    PyErr_Fetch(&type, &value, &trace);
    for (Py_ssize_t i = 0; i < PyList_Size(names_); ++i) {
      PyObject* r = PyObject_CallMethod(core_, "_unregister_policy", "O",
                                        PyList_GetItem(names_, i));
      Py_XDECREF(r);
      PyErr_Clear();
    }
    PyErr_Restore(type, value, trace);
  }

  ~policy_registry() {
    Py_XDECREF(core_);
    Py_XDECREF(names_);
  }
  policy_registry(const policy_registry&) = delete;
  auto operator=(const policy_registry&) -> policy_registry& = delete;

private:
  template <class Factory>
  static auto make(const policy_settings& s, const store_geometry& g, const cache_options& o,
                   element e) -> any_cache* {
    auto [ladder, profiler] = Factory{}(s);
    return make_model(e, std::move(ladder), std::move(profiler), g, o, s.threshold).release();
  }

  auto core() -> PyObject* {
    if (core_ == nullptr && (core_ = PyImport_ImportModule("kvsieve._core")) == nullptr) {
      throw python_error();
    }
    return core_;
  }
  auto names() -> PyObject* {
    if (names_ == nullptr && (names_ = PyList_New(0)) == nullptr) {
      throw python_error();
    }
    return names_;
  }

  PyObject* module_;
  PyObject* core_ = nullptr;
  PyObject* names_ = nullptr;
};

namespace detail {

/// The body of PyInit_<name>: the module, then the user's registrations; any failure is an
/// ImportError-like exception and no module.
inline auto init_policy_module(PyModuleDef* def, void (*fill)(policy_registry&)) -> PyObject* {
  PyObject* module = PyModule_Create(def);
  if (module == nullptr) {
    return nullptr;
  }
  policy_registry registry(module);
  try {
    fill(registry);
    registry.finish();
    return module;
  } catch (const policy_registry::python_error&) {
  } catch (const std::exception& e) {
    PyErr_Format(PyExc_ImportError, "%s: %s", PyModule_GetName(module), e.what());
  } catch (...) {
    PyErr_Format(PyExc_ImportError, "%s: an unknown C++ exception", PyModule_GetName(module));
  }
  registry.rollback();
  Py_DECREF(module);
  return nullptr;
}

} // namespace detail
} // namespace kvsieve::python

/// Defines the Python module `name` (PyInit_<name>) whose body registers policies with
/// `registry` (a kvsieve::python::policy_registry&); see the top of this header.
#define KVSIEVE_PYTHON_POLICIES(name, registry)                                                   \
  static void kvsieve_python_fill_##name(::kvsieve::python::policy_registry& registry);          \
  PyMODINIT_FUNC PyInit_##name() {                                                                \
    static PyModuleDef def = {PyModuleDef_HEAD_INIT, #name,                                       \
                              "kvsieve policies (kvsieve/python/extension.hpp)", -1, nullptr,     \
                              nullptr, nullptr, nullptr, nullptr};                                \
    return ::kvsieve::python::detail::init_policy_module(&def, &kvsieve_python_fill_##name);     \
  }                                                                                               \
  static void kvsieve_python_fill_##name(::kvsieve::python::policy_registry& registry)
