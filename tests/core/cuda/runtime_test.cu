// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#include <cstdint>
#include <numeric>
#include <vector>

#include "common/catch.hpp"

#include <kvsieve/core/cuda/runtime.cuh>

using kvsieve::errc;
namespace kc = kvsieve::cuda;

namespace {
__global__ void write_flag(int* flag, int value) { *flag = value; }
} // namespace

TEST_CASE("device_buffer round-trips and reports its size", "[cuda][runtime]") {
  std::vector<std::int32_t> host(1000);
  std::iota(host.begin(), host.end(), -17);
  kc::device_buffer<std::int32_t> buf(host.size());
  CHECK(buf.bytes() == 4000);
  buf.upload(host);
  std::vector<std::int32_t> back(host.size());
  buf.download(back);
  CHECK(back == host);
  auto moved = std::move(buf);
  CHECK(buf.data() == nullptr);
  CHECK(moved.size() == 1000);
  CHECK_THROWS_AS(moved.upload(std::vector<std::int32_t>(1001)), kvsieve::error);
}

// [api_error]: the failed cudaMalloc is the point, and compute-sanitizer reports every failed
// API call as an error, so tools/gpu_check.sh's sanitizer runs leave this case out.
TEST_CASE("device out-of-memory is errc::out_of_memory and the context stays usable",
          "[cuda][runtime][api_error]") {
  try {
    kc::device_buffer<std::byte> huge(std::size_t{1} << 50U); // 1 PiB
    FAIL("a 1 PiB allocation succeeded");
  } catch (const kvsieve::error& e) {
    CHECK(e.code() == errc::out_of_memory);
  }
  kc::device_buffer<float> ok(16);
  CHECK(ok.data() != nullptr);
}

TEST_CASE("a mapped flag written by a kernel is seen by the host after sync", "[cuda][runtime]") {
  kc::mapped_buffer<int> flag(1);
  CHECK(flag.host()[0] == 0);
  write_flag<<<1, 1>>>(flag.device(), 42);
  kc::check_launch("write_flag");
  kc::check(cudaDeviceSynchronize(), "sync");
  CHECK(flag.host()[0] == 42);
}
