// Must not compile: a store with the sequence operations but no host page access (a device
// store's shape) cannot back the host cache; the diagnostic names the missing piece, host_pages.
#include <kvsieve/kvsieve.hpp>
using namespace kvsieve;
struct no_pages {
  using value_type = float;
  using memory_space = host_space;
  explicit no_pages(const store_geometry& geometry) : g(geometry) {}
  auto geometry() const -> const store_geometry& { return g; }
  auto index(head_id) const -> std::size_t { return 0; }
  auto size(head_id) const -> std::int32_t { return 0; }
  auto append(head_id, std::span<const float>, std::span<const float>, token_meta)
      -> std::int32_t { return 0; }
  auto erase(head_id, std::int32_t) -> std::int32_t { return -1; }
  void clear(head_id) {}
  auto bytes_resident() const -> std::size_t { return 0; }
  auto page_bytes() const -> std::size_t { return 0; }
  auto kv_bytes_per_token() const -> std::size_t { return 0; }
  store_geometry g;
};
int main() {
  adaptive_cache<ladder<policies::full>, recovery_profiler, no_pages> cache(
      ladder<policies::full>(), recovery_profiler(), store_geometry{});
}
