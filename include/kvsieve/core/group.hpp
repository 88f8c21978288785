// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// GQA/MQA grouping: query head q reads KV head q / (n_head_q / n_head_kv), as Hugging Face's
/// repeat_kv does. The statistics of a group are combined by mean or worst case.

#include <cstdint>

namespace kvsieve {

/// How the query heads of one KV head are combined (fastgen-spec §6 item 9).
enum class group_reduce {
  mean,  ///< DEFAULT: recovery and scores of the group's mean attention
  worst, ///< OPTION: recovery is the group's minimum, scores the group's maximum
};

} // namespace kvsieve
