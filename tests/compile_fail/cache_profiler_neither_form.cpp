// Must not compile: a profiler whose layer-wide hook answers with indices instead of head_choice
// is neither form of `profiler`; the cache's constraint names the concept.
#include <kvsieve/kvsieve.hpp>
struct index_layer_profiler {
  void choose_layer(std::span<const kvsieve::candidate_scores>, std::span<std::size_t>) const {}
  friend auto operator==(const index_layer_profiler&, const index_layer_profiler&)
      -> bool = default;
};
int main() {
  kvsieve::adaptive_cache<kvsieve::ladder<kvsieve::policies::full>, index_layer_profiler> cache(
      {}, {}, kvsieve::store_geometry{});
}
