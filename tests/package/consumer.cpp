// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// A downstream program: builds a FastGen cache, prefills a BOS-attending head, checks the choice
// and that its head profile (nlohmann_json, found through kvsieve's package) round-trips.
#include <cstdio>
#include <sstream>
#include <vector>

#include <kvsieve/kvsieve.hpp>
#include <kvsieve/profile/profile_file.hpp>

auto main() -> int {
  constexpr std::size_t n = 32, d = 4;
  std::vector<float> q(n * d, 0.0F), k(n * d, 0.0F), v(n * d, 1.0F), out(n * d);
  for (std::size_t i = 0; i < n; ++i) {
    q[i * d] = 10.0F;
  }
  k[0] = 10.0F; // every query looks at BOS
  std::vector<kvsieve::token_class> cls(n, kvsieve::token_class::none);
  cls[0] = kvsieve::token_class::special;
  kvsieve::adaptive_cache cache(kvsieve::make_fastgen_ladder(), kvsieve::recovery_profiler(0.95),
                                {.n_seq = 1, .n_layer = 1, .n_head_kv = 1, .head_dim = d});
  cache.prefill(0, 0, {q.data(), {n, 1, d}}, {k.data(), {n, 1, d}}, {v.data(), {n, 1, d}}, cls,
                {out.data(), {n, 1, d}});
  const auto r = cache.report();
  std::printf("consumer: %s, saved %.0f%%\n", std::string(r.heads.front().policy).c_str(),
              100.0 * r.saved_fraction());
  std::stringstream file;
  kvsieve::save_profile(kvsieve::profile_of(cache, 0.95), file);
  const auto profile = kvsieve::load_profile(file);
  return r.heads.front().policy == "special" && profile.heads.front().policy == "special" ? 0 : 1;
}
