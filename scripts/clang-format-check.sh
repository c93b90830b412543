#!/usr/bin/env bash
# Checks that the C and C++ sources are formatted as .clang-format says.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'csrc/*.cc' 'csrc/*.h' 'scripts/bench/*.c' 'scripts/bench/*.cc' 'test/fixtures/*.cc')
clang-format --dry-run -Werror "${files[@]}"
