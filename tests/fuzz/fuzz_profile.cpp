// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the input is a head-profile file, read by kvsieve::load_profile. An accepted
// profile must be consistent (what replay_profiler and save_profile check), and it must save and
// load back equal.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include <kvsieve/profile/profile_file.hpp>

#include "fuzz_common.hpp"

extern "C" auto LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) -> int {
  fuzz::expect_only_kvsieve_errors([&] {
    std::istringstream in{std::string(fuzz::as_text(data, size))};
    const auto p = kvsieve::load_profile(in);
    fuzz::check(kvsieve::detail::profile_file::profile_problem(p).empty(),
                "an accepted profile is consistent");
    std::stringstream file;
    kvsieve::save_profile(p, file);
    fuzz::check(kvsieve::load_profile(file) == p, "save then load gives the profile back");
  });
  return 0;
}
