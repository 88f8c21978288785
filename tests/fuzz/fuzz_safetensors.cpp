// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is a whole .safetensors file (8-byte length, JSON header, data).
// It is opened by llama::safetensors_file, every tensor is read as float, and it is loaded as
// model.safetensors of the tiny model (fuzz_common.hpp) by llama::model_weights.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <llama/safetensors.hpp>
#include <llama/weights.hpp>

#include "fuzz_common.hpp"

extern "C" auto LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) -> int {
  static const auto dir = [] {
    auto d = fuzz::scratch_dir() / "safetensors";
    fuzz::fs::create_directories(d);
    return d;
  }();
  const auto file = dir / "model.safetensors";
  fuzz::write_file(file, fuzz::as_text(data, size));

  fuzz::expect_only_kvsieve_errors([&] {
    const llama::safetensors_file st(file);
    for (auto it = st.tensors().begin(); it != st.tensors().end(); ++it) {
      const auto& t = it->second;
      // The header check keeps every tensor inside the file's data (touching the first and
      // last byte faults if it does not).
      fuzz::check(t.bytes.size() + 8 <= size, "tensor bytes within the file");
      if (!t.bytes.empty()) {
        volatile auto first = t.bytes.front();
        volatile auto last = t.bytes.back();
        static_cast<void>(first);
        static_cast<void>(last);
      }
      fuzz::expect_only_kvsieve_errors([&] {
        const auto v = st.read_floats(it->first);
        fuzz::check(v.size() == t.n_elements, "read_floats gives n_elements values");
        fuzz::check(v.size() <= size, "no more floats than bytes in the file");
        (void)llama::detail::first_non_finite(v);
        if (const float* in_place = st.f32_data(it->first)) {
          fuzz::check(std::memcmp(in_place, v.data(), v.size() * sizeof(float)) == 0,
                      "f32_data equals read_floats");
        }
      });
    }
  });
  fuzz::expect_only_kvsieve_errors(
      [&] { (void)llama::model_weights::load(dir, fuzz::tiny_config()); });
  return 0;
}
