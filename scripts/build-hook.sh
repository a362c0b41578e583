#!/usr/bin/env bash
# Builds hooks/mountat-hook, the static launcher runtimes execute (see hooks/launcher.c for why
# it is static). Rebuilt only when the source, or the node it points at, changed.
set -euo pipefail
cd "$(dirname "$0")/.."
node_path=$(command -v node)
out=hooks/mountat-hook
stamp="$out.node"
if [ -x "$out" ] && [ "$out" -nt hooks/launcher.c ] && [ "$(cat "$stamp" 2>/dev/null)" = "$node_path" ]; then
  exit 0
fi
cc -static -s -O2 -Wall -Wextra -Werror -DMOUNTAT_NODE="\"$node_path\"" -o "$out" hooks/launcher.c
echo "$node_path" > "$stamp"
