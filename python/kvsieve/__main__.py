# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""python -m kvsieve --cmake-dir | --include-dir | --version

Where the installed package keeps the C++ headers it was built from and its CMake package, for
building a policy module of your own (docs/python.md, "Your own policy"):

    cmake -S . -B build -Dkvsieve_DIR="$(python -m kvsieve --cmake-dir)" \\
          -DPython_EXECUTABLE="$(command -v python)"
"""

import argparse
import pathlib
import sys

import kvsieve


def main(argv: list[str]) -> int:
    here = pathlib.Path(kvsieve.__file__).resolve().parent
    parser = argparse.ArgumentParser(prog="python -m kvsieve", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--cmake-dir", action="store_true",
                       help="the folder holding kvsieveConfig.cmake (for kvsieve_DIR)")
    group.add_argument("--include-dir", action="store_true", help="the C++ headers' root")
    group.add_argument("--version", action="store_true")
    args = parser.parse_args(argv)
    if args.version:
        print(kvsieve.__version__)
        return 0
    path = here / ("cmake" if args.cmake_dir else "include")
    if not path.is_dir():
        print(f"python -m kvsieve: {path} is missing (an install without the C++ files?)",
              file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
