#!/bin/bash
# Configures and builds the libFuzzer targets (tests/fuzz) with clang into
# build-fuzz/ (TUSK_FUZZ=ON: ASan + UBSan + coverage). Prints the directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUSK_FUZZ=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" >&2
echo "$PWD/$dir"
