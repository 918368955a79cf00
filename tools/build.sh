#!/bin/bash
# Configures and builds tusk into build/ (or build-sanitize/ with
# TUSK_SANITIZE=1: AddressSanitizer + UndefinedBehaviorSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${TUSK_SANITIZE:-0}" = 1 ]; then
  dir=build-sanitize
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DTUSK_SANITIZE=ON >/dev/null
else
  dir=build
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$dir" -j"$(nproc)" >&2
echo "$PWD/$dir"
