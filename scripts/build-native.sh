#!/usr/bin/env bash
# Builds the two static C programs (see their sources for why each is static):
#   hooks/mountat-hook   from native/hook-launcher.c   (what container runtimes execute)
#   dist/mountat-action  from native/action-starter.c  (how the runner starts an action)
# Each is rebuilt only when its source, or the node the launcher points at, changed.
set -euo pipefail
cd "$(dirname "$0")/.."
node_path=$(command -v node)

build() { # OUT SOURCE [CFLAGS...]
  local out=$1 source=$2 stamp="$1.stamp"
  shift 2
  local want="$source $node_path $*"
  if [ -x "$out" ] && [ "$out" -nt "$source" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  mkdir -p "$(dirname "$out")"
  cc -static -s -O2 -Wall -Wextra -Werror "$@" -o "$out" "$source"
  echo "$want" > "$stamp"
}

build hooks/mountat-hook native/hook-launcher.c -DMOUNTAT_NODE="\"$node_path\""
build dist/mountat-action native/action-starter.c
