#!/usr/bin/env bash
# The shape rule of tests/: no Rust file over 1,000 lines, no function over
# 150 lines (from its `fn` line to its closing brace, rustfmt-formatted).
# Prints each offender and exits 1 if there is one; `-v` also lists the ten
# longest functions. Run from anywhere: `tests/check-lengths.sh`.
set -euo pipefail
cd "$(dirname "$0")"
status=0
while read -r lines file; do
  if [ "$file" != total ] && [ "$lines" -gt 1000 ]; then
    echo "file over 1000 lines: $file ($lines)"
    status=1
  fi
done < <(find . -name '*.rs' -not -path './browser/node_modules/*' -print0 | xargs -0 wc -l)
lengths=$(find . -name '*.rs' -not -path './browser/node_modules/*' -print0 | xargs -0 awk '
  FNR == 1 { cur = "" }
  match($0, /^ *((pub(\([a-z]+\))? )?(async )?(const )?(unsafe )?fn [A-Za-z0-9_]+)/) && cur == "" {
    indent = $0; sub(/[^ ].*/, "", indent)
    name = $0; sub(/^ *((pub(\([a-z]+\))? )?(async )?(const )?(unsafe )?fn )/, "", name); sub(/[^A-Za-z0-9_].*/, "", name)
    # A declaration without a body (a trait item) ends on its own line.
    if ($0 ~ /;$/) next
    cur = name; start = FNR; closer = indent "}"
    next
  }
  cur != "" && $0 == closer {
    printf "%d %s:%d %s\n", FNR - start + 1, FILENAME, start, cur
    cur = ""
  }
' | sort -rn)
while read -r n where name; do
  if [ "$n" -gt 150 ]; then
    echo "function over 150 lines: $where $name ($n)"
    status=1
  fi
done <<< "$lengths"
if [ "${1:-}" = -v ]; then
  echo "longest functions:"
  head -10 <<< "$lengths"
fi
[ "$status" = 0 ] && echo "tests/: every file within 1000 lines, every function within 150"
exit "$status"
