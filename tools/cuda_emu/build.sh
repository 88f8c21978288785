#!/bin/bash
# Builds kvsieve's [cuda] tests (or a driver) against the host emulator of the CUDA kernels.
# usage: tools/cuda_emu/build.sh asan|tsan|opt NAME...
#   NAME: paged_store | decode | adaptive_cache | prefill (tests/*/cuda/NAME_test.cu, unchanged),
#         or a driver: cache_batch, python_device_cache (tools/cuda_emu/drivers/NAME.cu)
# Binaries: $EMU_OUT/bin/NAME_MODE (EMU_OUT defaults to build/cuda-emu).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${EMU_OUT:-$repo/build/cuda-emu}
mode=$1
shift
case $mode in
  asan) flags="-O1 -g -fsanitize=address,undefined -fno-sanitize=vptr" ;;
  tsan) flags="-O1 -g -fsanitize=thread" ;;
  opt) flags="-O2 -g" ;;
  *) echo "usage: $0 asan|tsan|opt NAME..." >&2; exit 2 ;;
esac
[ -n "${EMU_NO_TRANSFORM:-}" ] || python3 "$here/transform.py" "$out" >/dev/null
cxx="g++ -std=c++20 $flags -fno-strict-aliasing -pthread -include $here/emu.hpp -I$out/inc \
  -I$repo/include -I$repo/tests -I$repo/examples -I$repo/python/include -I$repo/python/src \
  -I/usr/local/cuda/include -w"
mkdir -p "$out/obj/$mode" "$out/bin"
$cxx -c "$here/emu_runtime.cpp" -o "$out/obj/$mode/rt.o"
$cxx -c "$here/catch_main.cpp" -o "$out/obj/$mode/main.o"
for t in "$@"; do
  src=$(find "$repo/tests" -path "*/cuda/${t}_test.cu" | head -n 1)
  [ -n "$src" ] || src=$here/drivers/$t.cu
  $cxx -x c++ -c "$src" -o "$out/obj/$mode/$t.o"
  $cxx "$out/obj/$mode/$t.o" "$out/obj/$mode/rt.o" "$out/obj/$mode/main.o" -lfmt -lhwy \
    -o "$out/bin/${t}_$mode"
  echo "built $out/bin/${t}_$mode"
done
