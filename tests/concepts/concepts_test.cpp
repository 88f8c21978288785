// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// Compile-time contracts: every built-in models its concept, an archetype with only the required
// members does too, and a near-miss per requirement does not.
#include <span>
#include <type_traits>

#include <common/catch.hpp>

#include <kvsieve/kvsieve.hpp>

// The archetypes exist only to be checked by static_assert; clang flags their unused members.
// A pragma, not a flag: kvsieve_warnings' -Wall comes after a target's own options and would
// turn a -Wno- flag back on.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunused-const-variable"
#pragma clang diagnostic ignored "-Wunneeded-internal-declaration"
#endif

namespace {
using namespace kvsieve;
using namespace kvsieve::policies;

// ---- policy
struct policy_archetype {
  static constexpr std::string_view name = "archetype";
  auto keeps(token_info, step_context) const -> bool { return true; }
};
struct no_name {
  auto keeps(token_info, step_context) const -> bool { return true; }
};
struct no_keeps {
  static constexpr std::string_view name = "no_keeps";
};
struct keeps_wrong_type {
  static constexpr std::string_view name = "x";
  auto keeps(token_info, step_context) const -> int { return 1; }
};
struct keeps_not_const {
  static constexpr std::string_view name = "x";
  auto keeps(token_info, step_context) -> bool { return true; }
};
struct not_copyable {
  static constexpr std::string_view name = "x";
  not_copyable() = default;
  not_copyable(const not_copyable&) = delete;
  auto keeps(token_info, step_context) const -> bool { return true; }
};

// Optional hooks: absent is fine, declared as documented is fine, anything else named like a
// hook is not a policy (strict diagnostics: never read as "no window" / "no budget").
struct hooks_archetype : policy_archetype {
  auto window(step_context) const -> std::int32_t { return 1; }
  auto budget(step_context) const -> std::int32_t { return 1; }
  auto ranking() const -> score_rule { return score_mode::mean; }
};
// A user's own ranking type (score_ranking): any copyable type with source, update and key.
struct recency_weighted {
  [[nodiscard]] constexpr auto source() const -> score_source { return {}; }
  [[nodiscard]] constexpr auto update(float s, float p) const -> float { return 0.5F * s + p; }
  [[nodiscard]] constexpr auto key(double s, std::int32_t pos, std::int32_t t) const -> double {
    return s * (1.0 + 1.0 / static_cast<double>(t - pos));
  }
};
struct ranking_no_key {
  [[nodiscard]] constexpr auto source() const -> score_source { return {}; }
  [[nodiscard]] constexpr auto update(float s, float p) const -> float { return s + p; }
};
struct custom_ranked : policy_archetype {
  auto budget(step_context) const -> std::int32_t { return 1; }
  auto ranking() const -> recency_weighted { return {}; }
};
struct ranking_returns_mode : policy_archetype {
  auto budget(step_context) const -> std::int32_t { return 1; }
  auto ranking() const -> score_mode { return score_mode::mean; } // not a score_ranking
};
static_assert(score_ranking<score_rule> && score_ranking<recency_weighted>);
static_assert(!score_ranking<ranking_no_key> && !score_ranking<score_mode>);
static_assert(policy<custom_ranked> && !policy<ranking_returns_mode>);
static_assert(std::is_same_v<decltype(ranking_of(custom_ranked{})), recency_weighted>);
static_assert(policy<policies::h2o> && policy<policies::tova> && policy<policies::snapkv> &&
              policy<policies::streaming_llm>);
static_assert(!has_window<policies::tova> && has_budget<policies::tova> &&
              has_window<policies::h2o> && !has_window<policies::snapkv>);
struct window_no_arg : policy_archetype {
  auto window() const -> std::int32_t { return 1; }
};
struct window_not_const : policy_archetype {
  auto window(step_context) -> std::int32_t { return 1; }
};
struct window_wrong_type : policy_archetype {
  auto window(step_context) const -> double { return 1.0; }
};
struct window_overloaded : policy_archetype {
  auto window(int) const -> std::int32_t { return 1; }
  auto window(token_info) const -> std::int32_t { return 1; }
};
struct window_template : policy_archetype {
  template <class T>
  auto window(T, T) const -> std::int32_t { return 1; }
};
struct window_data : policy_archetype {
  std::int32_t window = 4;
};
struct budget_not_const : policy_archetype {
  auto budget(step_context) -> std::int32_t { return 1; }
};
struct ranking_wrong_type : policy_archetype {
  auto ranking() const -> int { return 0; }
};
struct final_window_no_arg final : policy_archetype {
  auto window() const -> std::int32_t { return 1; }
};
struct final_archetype final : policy_archetype {};
struct name_not_static {
  std::string_view name = "x";
  auto keeps(token_info, step_context) const -> bool { return true; }
};
struct name_not_constant {
  static inline std::string_view name = "x";
  auto keeps(token_info, step_context) const -> bool { return true; }
};
struct name_c_string {
  static constexpr const char* name = "x";
  auto keeps(token_info, step_context) const -> bool { return true; }
};

static_assert(policy<policy_archetype>);
static_assert(policy<hooks_archetype> && has_window<hooks_archetype> &&
              has_budget<hooks_archetype> && has_ranking<hooks_archetype>);
static_assert(policy<final_archetype> && policy<name_c_string>);
static_assert(!has_window<policy_archetype> && !has_budget<policy_archetype>);
static_assert(!policy<window_no_arg> && !policy<window_not_const> && !policy<window_wrong_type>);
static_assert(!policy<window_overloaded> && !policy<window_template> && !policy<window_data>);
static_assert(!policy<budget_not_const> && !policy<ranking_wrong_type>);
static_assert(!policy<final_window_no_arg>);
static_assert(!policy<name_not_static> && !policy<name_not_constant>);
static_assert(!well_formed_window<window_no_arg> && well_formed_budget<window_no_arg>);
static_assert(!uses_scores<budget_not_const>);
static_assert(!has_budget<special_punct> && has_budget<special_punct_frequent>);
static_assert(!policy<no_name>);
static_assert(!policy<no_keeps>);
static_assert(!policy<keeps_wrong_type>);
static_assert(!policy<keeps_not_const>);
static_assert(!policy<not_copyable>);
static_assert(policy<special> && policy<punctuation> && policy<local> && policy<frequent> &&
              policy<full> && policy<sinks> && policy<recent>);
static_assert(policy<special_punct> && policy<special_punct_frequent> &&
              policy<special_punct_frequent_local> && policy<local_frequent> && policy<streaming>);
static_assert(policy<hybrid<policy_archetype, local>>);
static_assert(!uses_scores<policy_archetype> && uses_scores<frequent> && !uses_scores<local>);

// ---- slot_table (cache/step_algorithm.hpp): the metadata backend of Algorithm 2
struct slot_table_archetype {
  [[nodiscard]] auto size() const -> std::int32_t { return 0; }
  [[nodiscard]] auto position(std::int32_t) const -> std::int32_t { return 0; }
  [[nodiscard]] auto score(std::int32_t) const -> float { return 0.0F; }
  [[nodiscard]] auto reason(std::int32_t) const -> keep_reason { return keep_reason::rule; }
  void set_reason(std::int32_t, keep_reason) {}
  auto erase(std::int32_t) -> std::int32_t { return -1; }
  template <class F>
  void for_each_block(F&&) {}
};
struct slot_table_no_blocks {
  [[nodiscard]] auto size() const -> std::int32_t { return 0; }
  [[nodiscard]] auto position(std::int32_t) const -> std::int32_t { return 0; }
  [[nodiscard]] auto score(std::int32_t) const -> float { return 0.0F; }
  [[nodiscard]] auto reason(std::int32_t) const -> keep_reason { return keep_reason::rule; }
  void set_reason(std::int32_t, keep_reason) {}
  auto erase(std::int32_t) -> std::int32_t { return -1; }
};
struct slot_table_erase_void : slot_table_archetype {
  void erase(std::int32_t) {} // must say where the last token came from
};
static_assert(slot_table<slot_table_archetype> && slot_table<owned_slots>);
static_assert(!slot_table<slot_table_no_blocks> && !slot_table<slot_table_erase_void>);

// ---- profiler
struct profiler_archetype {
  auto operator()(const candidate_scores&) const -> std::size_t { return 0; }
  friend auto operator==(const profiler_archetype&, const profiler_archetype&) -> bool = default;
};
struct profiler_not_comparable {
  auto operator()(const candidate_scores&) const -> std::size_t { return 0; }
};
struct profiler_wrong_input {
  auto operator()(int) const -> std::size_t { return 0; }
  friend auto operator==(const profiler_wrong_input&, const profiler_wrong_input&) -> bool = default;
};
static_assert(profiler<profiler_archetype>);
// The per-head form may return a head_choice (a budget for this head); the layer-wide form sees
// every KV head of a layer at once.
struct choice_profiler {
  auto operator()(const candidate_scores&) const -> head_choice { return {0, 4}; }
  friend auto operator==(const choice_profiler&, const choice_profiler&) -> bool = default;
};
struct layer_archetype {
  void choose_layer(std::span<const candidate_scores>, std::span<head_choice>) const {}
  friend auto operator==(const layer_archetype&, const layer_archetype&) -> bool = default;
};
struct layer_wrong_output {
  void choose_layer(std::span<const candidate_scores>, std::span<std::size_t>) const {}
  friend auto operator==(const layer_wrong_output&, const layer_wrong_output&) -> bool = default;
};
static_assert(profiler<choice_profiler> && head_profiler<choice_profiler>);
static_assert(profiler<layer_archetype> && layer_profiler<layer_archetype> &&
              !head_profiler<layer_archetype>);
static_assert(!profiler<layer_wrong_output>);
static_assert(profiler<pyramid_profiler> && head_profiler<pyramid_profiler>);
static_assert(profiler<adakv_profiler> && layer_profiler<adakv_profiler>);
static_assert(profiler<recovery_profiler>);
static_assert(!profiler<profiler_not_comparable>);
static_assert(!profiler<profiler_wrong_input>);

// ---- kv_store (every store) and host_kv_store (what adaptive_cache and attend_paged use)
template <class T = float, class Space = host_space>
struct store_archetype {
  using value_type = T;
  using memory_space = Space;
  auto geometry() const -> const store_geometry& { return g; }
  auto index(head_id) const -> std::size_t { return 0; }
  auto size(head_id) const -> std::int32_t { return 0; }
  auto append(head_id, std::span<const float>, std::span<const float>, token_meta) -> std::int32_t { return 0; }
  auto erase(head_id, std::int32_t) -> std::int32_t { return -1; }
  void clear(head_id) {}
  auto bytes_resident() const -> std::size_t { return 0; }
  auto page_bytes() const -> std::size_t { return 0; }
  auto kv_bytes_per_token() const -> std::size_t { return 0; }
  store_geometry g;
};
struct store_no_erase {
  using value_type = float;
  using memory_space = host_space;
  auto geometry() const -> const store_geometry& { return g; }
  auto index(head_id) const -> std::size_t { return 0; }
  auto size(head_id) const -> std::int32_t { return 0; }
  auto append(head_id, std::span<const float>, std::span<const float>, token_meta) -> std::int32_t { return 0; }
  void clear(head_id) {}
  auto bytes_resident() const -> std::size_t { return 0; }
  auto page_bytes() const -> std::size_t { return 0; }
  auto kv_bytes_per_token() const -> std::size_t { return 0; }
  store_geometry g;
};
struct store_no_clear {
  using value_type = float;
  using memory_space = host_space;
  auto geometry() const -> const store_geometry& { return g; }
  auto index(head_id) const -> std::size_t { return 0; }
  auto size(head_id) const -> std::int32_t { return 0; }
  auto append(head_id, std::span<const float>, std::span<const float>, token_meta) -> std::int32_t { return 0; }
  auto erase(head_id, std::int32_t) -> std::int32_t { return -1; }
  auto bytes_resident() const -> std::size_t { return 0; }
  auto page_bytes() const -> std::size_t { return 0; }
  auto kv_bytes_per_token() const -> std::size_t { return 0; }
  store_geometry g;
};
struct store_no_index {
  using value_type = float;
  using memory_space = host_space;
  auto geometry() const -> const store_geometry& { return g; }
  auto size(head_id) const -> std::int32_t { return 0; }
  auto append(head_id, std::span<const float>, std::span<const float>, token_meta) -> std::int32_t { return 0; }
  auto erase(head_id, std::int32_t) -> std::int32_t { return -1; }
  void clear(head_id) {}
  auto bytes_resident() const -> std::size_t { return 0; }
  auto page_bytes() const -> std::size_t { return 0; }
  auto kv_bytes_per_token() const -> std::size_t { return 0; }
  store_geometry g;
};
// The host pieces, to assemble host stores with exactly one piece missing or wrong.
template <class T>
struct page_access {
  auto page_count(head_id) const -> std::int32_t { return 0; }
  auto page(head_id, std::int32_t) -> page_view<T> { return {}; }
  auto page(head_id, std::int32_t) const -> page_view<const T> { return {}; }
};
struct meta_access {
  auto meta(head_id, std::int32_t) const -> token_meta { return {}; }
  void set_reason(head_id, std::int32_t, keep_reason) {}
};
struct capacity_access {
  auto pages_to_append(head_id) const -> std::size_t { return 0; }
  auto can_allocate(std::size_t) const -> bool { return true; }
};
template <class T = float, class Space = host_space>
struct host_store_archetype : store_archetype<T, Space>, page_access<T>, meta_access,
                              capacity_access {};
struct host_no_page_count : store_archetype<>, meta_access, capacity_access {
  auto page(head_id, std::int32_t) -> page_view<float> { return {}; }
  auto page(head_id, std::int32_t) const -> page_view<const float> { return {}; }
};
struct host_no_const_page : store_archetype<>, meta_access, capacity_access {
  auto page_count(head_id) const -> std::int32_t { return 0; }
  auto page(head_id, std::int32_t) -> page_view<float> { return {}; }
};
struct host_const_page_only : store_archetype<>, meta_access, capacity_access {
  auto page_count(head_id) const -> std::int32_t { return 0; }
  auto page(head_id, std::int32_t) const -> page_view<const float> { return {}; }
};
struct host_page_of_other_type : store_archetype<>, page_access<bfloat16>, meta_access,
                                 capacity_access {};
struct host_no_meta : store_archetype<>, page_access<float>, capacity_access {
  void set_reason(head_id, std::int32_t, keep_reason) {}
};
struct host_no_set_reason : store_archetype<>, page_access<float>, capacity_access {
  auto meta(head_id, std::int32_t) const -> token_meta { return {}; }
};
struct host_no_pages_to_append : store_archetype<>, page_access<float>, meta_access {
  auto can_allocate(std::size_t) const -> bool { return true; }
};
struct host_no_can_allocate : store_archetype<>, page_access<float>, meta_access {
  auto pages_to_append(head_id) const -> std::size_t { return 0; }
};
static_assert(kv_store<store_archetype<>> && !host_kv_store<store_archetype<>>);
static_assert(kv_store<store_archetype<float, cuda_space>>); // a device store: base only
static_assert(!kv_store<store_archetype<float, int>>);
static_assert(!kv_store<store_no_erase> && !kv_store<store_no_clear> &&
              !kv_store<store_no_index>);
static_assert(host_kv_store<host_store_archetype<>> && host_kv_store<host_store_archetype<half>>);
static_assert(kv_store<host_store_archetype<float, cuda_space>> &&
              !host_kv_store<host_store_archetype<float, cuda_space>>); // pages not host-readable
static_assert(kv_store<host_store_archetype<double>> &&
              !host_kv_store<host_store_archetype<double>>); // no decode kernel for double
static_assert(!host_kv_store<host_no_page_count> && !host_kv_store<host_no_const_page> &&
              !host_kv_store<host_const_page_only> && !host_kv_store<host_page_of_other_type>);
static_assert(!host_kv_store<host_no_meta> && !host_kv_store<host_no_set_reason>);
static_assert(!host_kv_store<host_no_pages_to_append> && !host_kv_store<host_no_can_allocate>);
static_assert(host_kv_store<paged_store<float>> && host_kv_store<paged_store<bfloat16>>);

// ---- ladder and memory spaces
static_assert(candidate_ladder<fastgen_ladder>);
static_assert(!candidate_ladder<special>);
static_assert(memory_space<host_space> && memory_space<cuda_space> && !memory_space<int>);
} // namespace

TEST_CASE("the concept checks above compiled", "[concepts]") {
  // The assertions are static; this case exists so the executable reports a pass.
  CHECK(policy_archetype{}.keeps({}, {}));
}
