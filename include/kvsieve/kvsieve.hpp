// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// kvsieve, host only: FastGen adaptive KV-cache compression (Ge et al., ICLR 2024).
// IWYU pragma: begin_exports
#include <kvsieve/cache/adaptive_cache.hpp>
#include <kvsieve/cache/options.hpp>
#include <kvsieve/cache/step_algorithm.hpp>
#include <kvsieve/cache/stepper.hpp>
#include <kvsieve/core/error.hpp>
#include <kvsieve/core/numeric.hpp>
#include <kvsieve/core/space.hpp>
#include <kvsieve/core/tensor.hpp>
#include <kvsieve/core/token_class.hpp>
#include <kvsieve/policy/concepts.hpp>
#include <kvsieve/policy/fastgen.hpp>
#include <kvsieve/policy/peers.hpp>
#include <kvsieve/policy/ranking.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/profile/attention_stats.hpp>
#include <kvsieve/profile/budget_profilers.hpp>
#include <kvsieve/profile/candidates.hpp>
#include <kvsieve/profile/recovery_profiler.hpp>
#include <kvsieve/store/paged_store.hpp>
#include <kvsieve/vocab/token_classifier.hpp>
// IWYU pragma: end_exports
