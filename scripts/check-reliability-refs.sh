#!/usr/bin/env bash
# Every reliability id (R1, R22, …) cited in the code must be defined in docs/RELIABILITY.md's matrix.
# A citation is "R<n>" after "reliability" or in a comment-like context: we take every word R<n> in the
# tracked source files (not in identifiers such as R1_ or variable names followed by " =").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
defined="$(grep -oE '^\| R[0-9]+ \|' docs/RELIABILITY.md | grep -oE 'R[0-9]+' | sort -u)"
cited="$(git ls-files -- '*.ts' '*.cpp' '*.h' '*.cu' '*.cuh' '*.sh' '*.md' '*.yaml' '*.proto' \
  | grep -v '^docs/RELIABILITY.md$' \
  | xargs grep -hoE '(^|[^A-Za-z0-9_])R[0-9]{1,3}([^A-Za-z0-9_ =]|$| [^=])' 2>/dev/null \
  | grep -oE 'R[0-9]+' | sort -u)"
missing="$(comm -23 <(echo "$cited") <(echo "$defined"))"
if [ -n "$missing" ]; then
  echo "cited but not defined in docs/RELIABILITY.md: $(echo "$missing" | tr '\n' ' ')" >&2
  for r in $missing; do git grep -nwE "$r" -- ':!docs/RELIABILITY.md' | head -3 >&2; done
  exit 1
fi
echo "reliability ids: $(echo "$cited" | wc -l) cited, all defined"
