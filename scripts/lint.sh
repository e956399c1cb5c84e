#!/bin/bash
# lint.sh - the habits CI checks before it builds: every C file formatted as .clang-format
# says, and no call from the banned list in src/ (unbounded copies and unchecked
# conversions: strcpy, strcat, sprintf, vsprintf, strtok, atoi, atol, gets; use snprintf,
# memcpy with a checked length, strtok_r, strtol/strtoull with their end pointer).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'tests/unit/*.h' \
    'tests/fuzz/*.c' 'tests/fuzz/*.h')
status=0
if ! clang-format --dry-run --Werror "${files[@]}"; then
    echo "lint.sh: run clang-format -i on the files above" >&2
    status=1
fi
banned='\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|atoll|gets)[[:space:]]*\('
if git grep -nE "$banned" -- 'src/*.c' 'src/*.h'; then
    echo "lint.sh: banned calls above (scripts/lint.sh says what to use instead)" >&2
    status=1
fi
exit $status
