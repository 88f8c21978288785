// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// llama::safetensors_file: one memory-mapped .safetensors file, its header checked in full when
/// it is opened, its F32 / F16 / BF16 tensors readable as float.
/// The format (huggingface/safetensors): an 8-byte little-endian u64 N, N bytes of JSON
///   {"<name>": {"dtype": "BF16", "shape": [r, c], "data_offsets": [begin, end]}, ...,
///    "__metadata__": {...}}
/// then the data buffer; offsets are bytes relative to the start of that buffer.
/// Errors are kvsieve::error with errc::io and a message naming the file (and the tensor);
/// everything in the header is checked against the file's size before anything is allocated,
/// and a conversion that does not fit in memory is errc::out_of_memory.

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <stdexcept>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>    // open
#include <sys/mman.h> // mmap, munmap
#include <sys/stat.h> // fstat
#include <unistd.h>   // close

#include <fmt/format.h>
#include <fmt/ranges.h> // fmt::join
#include <nlohmann/json.hpp>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/numeric.hpp>

#include <llama/json_input.hpp>

namespace llama {

// Tensor bytes are read as host values without swapping.
static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this reader does not byte-swap");

/// A whole file mapped read-only; move-only, unmapped on destruction. Addresses inside the
/// mapping stay valid across moves.
class mapped_file {
public:
  /// Throws errc::io when the file cannot be opened, is not a regular file, or cannot be mapped.
  explicit mapped_file(std::filesystem::path path) : path_(std::move(path)) {
    // O_NONBLOCK: a FIFO must not wait for a writer (it is then rejected as not regular).
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      fail("cannot open", errno);
    }
    struct ::stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      kvsieve::raise(kvsieve::errc::io, fmt::format("{}: not a regular file", path_.string()));
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) { // mmap rejects a zero length
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int why = errno; // before close() can change it
        ::close(fd);
        fail("cannot map", why);
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd); // the mapping keeps its own reference to the file
  }

  mapped_file(mapped_file&& other) noexcept
      : path_(std::move(other.path_)), data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  auto operator=(mapped_file&& other) noexcept -> mapped_file& {
    if (this != &other) {
      unmap();
      path_ = std::move(other.path_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  auto operator=(const mapped_file&) -> mapped_file& = delete;
  ~mapped_file() { unmap(); }

  [[nodiscard]] auto bytes() const noexcept -> std::span<const std::byte> { return {data_, size_}; }
  [[nodiscard]] auto path() const noexcept -> const std::filesystem::path& { return path_; }

private:
  [[noreturn]] void fail(std::string_view what, int why) const {
    kvsieve::raise(kvsieve::errc::io, fmt::format("{}: {}: {}", path_.string(), what,
                                                  std::generic_category().message(why)));
  }
  void unmap() noexcept {
    if (data_ != nullptr) {
      ::munmap(const_cast<std::byte*>(data_), size_); // munmap takes void*; nothing is written
    }
  }

  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// One header entry.
struct tensor_info {
  std::string dtype;                ///< as written: "F32", "F16", "BF16", "I8", ...
  std::vector<std::size_t> shape;   ///< row-major extents; [] is a scalar
  std::size_t n_elements = 1;       ///< product(shape); checked not to overflow
  std::span<const std::byte> bytes; ///< the data, inside the mapping
};

/// Bytes per element of the safetensors dtypes; 0 for a name this reader does not know (its size
/// is then not checked; reading it as float fails).
[[nodiscard]] inline auto dtype_size(std::string_view dtype) noexcept -> std::size_t {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64" || dtype == "C64") {
    return 8;
  }
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") {
    return 4;
  }
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") {
    return 2;
  }
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" ||
      dtype == "F8_E5M2" || dtype == "F8_E8M0") {
    return 1;
  }
  return 0;
}

/// "[a, b, c]", for messages; past 8 extents "[a, ..., h, ... (n extents)]".
[[nodiscard]] inline auto format_shape(std::span<const std::size_t> shape) -> std::string {
  constexpr std::size_t shown = 8;
  if (shape.size() <= shown) {
    return fmt::format("[{}]", fmt::join(shape, ", "));
  }
  return fmt::format("[{}, ... ({} extents)]", fmt::join(shape.first(shown), ", "), shape.size());
}

/// A mapped safetensors file with a checked header. Move-only (it owns the mapping).
class safetensors_file {
public:
  using tensor_map = std::map<std::string, tensor_info, std::less<>>;

  /// Maps `path` and checks its header: the file holds the 8-byte length and the header, the
  /// header is a JSON object of well-formed entries, every entry's offsets lie inside the data
  /// buffer with begin <= end, and end - begin = product(shape) * dtype size for known dtypes.
  /// Overlapping tensors are not detected. Throws errc::io naming the file (and the tensor).
  explicit safetensors_file(std::filesystem::path path) : map_(std::move(path)) {
    const auto all = map_.bytes();
    expect(all.size() >= 8, [&] {
      return fmt::format("{} bytes, shorter than the 8-byte header length", all.size());
    });
    std::uint64_t n = 0;
    std::memcpy(&n, all.data(), sizeof n);
    expect(n <= all.size() - 8, [&] {
      return fmt::format("header length {} runs past the end of the file ({} bytes)", n,
                         all.size());
    });
    // The format's own limit (huggingface/safetensors MAX_HEADER_SIZE): a header is a table of
    // names and offsets, so a larger one is a damaged or hostile file.
    expect(n <= max_header_bytes, [&] {
      return fmt::format("header length {} is more than the format's limit of {} bytes", n,
                         max_header_bytes);
    });
    const auto header = all.subspan(8, static_cast<std::size_t>(n));
    const auto data = all.subspan(8 + static_cast<std::size_t>(n));
    const auto j = detail::parse_json(
        std::string_view(reinterpret_cast<const char*>(header.data()), header.size()),
        map_.path().string() + ": header", detail::duplicate_keys::reject);
    expect(j.is_object(), "the header is not a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() != "__metadata__") {
        tensors_.emplace(it.key(), parse_entry(it.key(), it.value(), data));
      }
    }
  }

  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  [[nodiscard]] auto path() const noexcept -> const std::filesystem::path& { return map_.path(); }
  [[nodiscard]] auto tensors() const noexcept -> const tensor_map& { return tensors_; }

  /// The entry named `name`, or nullptr.
  [[nodiscard]] auto find(std::string_view name) const -> const tensor_info* {
    const auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }

  /// The entry named `name`; throws errc::io when the file has none.
  [[nodiscard]] auto tensor(std::string_view name) const -> const tensor_info& {
    const auto* t = find(name);
    expect(t != nullptr, [&] { return fmt::format("no tensor '{}'", detail::printable(name)); });
    return *t;
  }

  /// The F32 tensor `name` in place when its data is 4-byte aligned, else nullptr (read it with
  /// read_floats). Valid while this object lives. Throws errc::io when the tensor is absent.
  [[nodiscard]] auto f32_data(std::string_view name) const -> const float* {
    const auto& t = tensor(name);
    const bool aligned = reinterpret_cast<std::uintptr_t>(t.bytes.data()) % alignof(float) == 0;
    // The mapping is never written, so a float view of its bytes is as good as a copy.
    return t.dtype == "F32" && aligned ? reinterpret_cast<const float*>(t.bytes.data()) : nullptr;
  }

  /// Converts tensor `name` to float into `out` (n_elements values, row-major).
  /// Throws errc::io when the tensor is absent or its dtype is not F32, F16 or BF16, and
  /// errc::shape_mismatch when out.size() differs from its element count.
  void read_floats(std::string_view name, std::span<float> out) const {
    const auto& t = convertible(name);
    kvsieve::expects(out.size() == t.n_elements, kvsieve::errc::shape_mismatch, [&] {
      return fmt::format("{}: tensor '{}' of shape {} read into {} floats", path().string(),
                         detail::printable(name), format_shape(t.shape), out.size());
    });
    read_floats(name, out, 0);
  }

  /// Converts elements [first, first + out.size()) of tensor `name` (row-major) to float, so a
  /// caller can work through a large tensor block by block while each block is in cache.
  /// Throws as read_floats(name, out), and errc::out_of_range when the range runs past the
  /// tensor's end.
  void read_floats(std::string_view name, std::span<float> out, std::size_t first) const {
    const auto& t = convertible(name);
    kvsieve::expects(first <= t.n_elements && out.size() <= t.n_elements - first,
                     kvsieve::errc::out_of_range, [&] {
                       return fmt::format("{}: elements [{}, {}) of tensor '{}' of {} elements",
                                          path().string(), first, first + out.size(),
                                          detail::printable(name), t.n_elements);
                     });
    if (out.empty()) {
      return; // memcpy must not see the null pointer of an empty span
    }
    const std::size_t size = dtype_size(t.dtype);
    const auto* src = t.bytes.data() + first * size;
    if (t.dtype == "F32") {
      std::memcpy(out.data(), src, out.size() * size);
    } else if (t.dtype == "F16") {
      convert<kvsieve::half>(src, out);
    } else {
      convert<kvsieve::bfloat16>(src, out);
    }
  }

  /// read_floats into a new vector. Throws as read_floats does, and errc::out_of_memory naming
  /// the tensor when the vector cannot be allocated; the dtype is checked before allocating.
  [[nodiscard]] auto read_floats(std::string_view name) const -> std::vector<float> {
    auto out = allocate_floats(name);
    read_floats(name, out);
    return out;
  }

  /// A vector of n_elements floats (uninitialised values: zeros) for tensor `name`, after
  /// checking that read_floats can fill it. Throws errc::io as read_floats does, and
  /// errc::out_of_memory naming the tensor when it cannot be allocated.
  [[nodiscard]] auto allocate_floats(std::string_view name) const -> std::vector<float> {
    const auto& t = convertible(name);
    try {
      return std::vector<float>(t.n_elements);
    } catch (const std::bad_alloc&) {
    } catch (const std::length_error&) {
    }
    kvsieve::raise(kvsieve::errc::out_of_memory,
                   fmt::format("{}: cannot allocate {} floats ({} MiB) for tensor '{}' of shape {}",
                               path().string(), t.n_elements,
                               t.n_elements / (std::size_t{1} << 18U), detail::printable(name),
                               format_shape(t.shape)));
  }

private:
  // The tensor `name`, checked to be of a dtype read_floats converts (whose byte count the
  // header check tied to its shape, so n_elements floats are at most twice the file's size).
  [[nodiscard]] auto convertible(std::string_view name) const -> const tensor_info& {
    const auto& t = tensor(name);
    expect(t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16", [&] {
      return fmt::format("tensor '{}' has dtype {}; only F32, F16 and BF16 are supported",
                         detail::printable(name), detail::printable(t.dtype, 40));
    });
    return t;
  }

  template <class Message>
  void expect(bool ok, Message&& message) const {
    kvsieve::expects(ok, kvsieve::errc::io, [&] {
      if constexpr (std::is_invocable_v<Message>) {
        return fmt::format("{}: {}", path().string(), message());
      } else {
        return fmt::format("{}: {}", path().string(), message);
      }
    });
  }

  // 16-bit elements to float. They may sit at odd addresses: each is read through memcpy.
  template <class Half>
  static void convert(const std::byte* src, std::span<float> out) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::uint16_t bits = 0;
      std::memcpy(&bits, src + 2 * i, 2);
      out[i] = Half{bits}.to_float();
    }
  }

  // Whether a JSON value is an integer >= 0 (safe to get<std::uint64_t>()).
  [[nodiscard]] static auto is_count(const nlohmann::json& v) -> bool {
    return v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
  }

  auto parse_entry(const std::string& raw_name, const nlohmann::json& e,
                   std::span<const std::byte> data) const -> tensor_info {
    const auto name = detail::printable(raw_name);
    const auto bad = [&](std::string_view why) {
      return [&, why] {
        return fmt::format("tensor '{}': {} in {}", name, why, detail::excerpt(e));
      };
    };
    expect(e.is_object(), bad("the entry is not an object"));
    const auto dtype = e.find("dtype");
    const auto shape = e.find("shape");
    const auto offsets = e.find("data_offsets");
    expect(dtype != e.end() && dtype->is_string(), bad("'dtype' is missing or not a string"));
    expect(shape != e.end() && shape->is_array(), bad("'shape' is missing or not an array"));
    expect(offsets != e.end() && offsets->is_array() && offsets->size() == 2 &&
               is_count((*offsets)[0]) && is_count((*offsets)[1]),
           bad("'data_offsets' is not a pair of non-negative integers"));

    tensor_info t;
    t.dtype = dtype->get<std::string>();
    constexpr auto max = std::numeric_limits<std::size_t>::max();
    bool overflow = false; // product(shape) > max, unless an extent is 0
    for (const auto& extent : *shape) {
      expect(is_count(extent), bad("'shape' holds a value that is not a non-negative integer"));
      const auto x = static_cast<std::size_t>(extent.get<std::uint64_t>());
      t.shape.push_back(x);
      overflow = overflow || (x != 0 && t.n_elements > max / x);
      t.n_elements = overflow ? t.n_elements : t.n_elements * x;
    }
    if (std::find(t.shape.begin(), t.shape.end(), std::size_t{0}) != t.shape.end()) {
      t.n_elements = 0;
      overflow = false;
    }
    expect(!overflow, [&] {
      return fmt::format("tensor '{}': shape {} has more elements than size_t can count", name,
                         format_shape(t.shape));
    });
    const auto begin = (*offsets)[0].get<std::uint64_t>();
    const auto end = (*offsets)[1].get<std::uint64_t>();
    expect(begin <= end, [&] {
      return fmt::format("tensor '{}': data_offsets [{}, {}] end before they begin", name, begin,
                         end);
    });
    expect(end <= data.size(), [&] {
      return fmt::format("tensor '{}': data_offsets [{}, {}] run past the end of the data "
                         "({} bytes); the file is truncated or the header is wrong",
                         name, begin, end, data.size());
    });
    t.bytes = data.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(end - begin));
    // A dtype this reader does not know is not sized here (it cannot be read as float either).
    const std::size_t size = dtype_size(t.dtype);
    const bool fits = size == 0 || t.n_elements <= max / size;
    expect(size == 0 || (fits && t.n_elements * size == t.bytes.size()), [&] {
      return fmt::format("tensor '{}': {} bytes between data_offsets, but shape {} of {} needs {}",
                         name, t.bytes.size(), format_shape(t.shape), t.dtype,
                         fits ? std::to_string(t.n_elements * size)
                              : std::string("more than size_t can count"));
    });
    return t;
  }

  mapped_file map_;
  tensor_map tensors_;
};

} // namespace llama
