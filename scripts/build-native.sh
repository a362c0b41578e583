#!/usr/bin/env bash
# Builds the two static C programs (see their sources for why each is static):
#   hooks/mountat-hook   from native/hook-launcher.c   (what container runtimes execute)
#   dist/mountat-action  from native/starter/*.c       (how the runner starts an action)
# Each is rebuilt only when one of its sources or headers, or the node the launcher points at,
# changed. The starter links libseccomp statically (Debian's libseccomp-dev: scripts/setup.sh
# installs it, and the image's build stage has it).
set -euo pipefail
cd "$(dirname "$0")/.."
node_path=$(command -v node)

build() { # OUT "SOURCES" "HEADERS" [CFLAGS...] (and libraries, after the sources); $precheck runs first, if set
  local out=$1 sources=$2 headers=$3 stamp="$1.stamp"
  shift 3
  local want="$sources $node_path $*" file stale=0
  [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] || stale=1
  for file in $sources $headers; do
    [ "$out" -nt "$file" ] || stale=1
  done
  [ "$stale" -eq 1 ] || return 0
  ${precheck:-true}
  mkdir -p "$(dirname "$out")"
  # shellcheck disable=SC2086 # the lists are whitespace-separated paths without spaces
  # The flags after the sources: a static library (-l) must come after what uses it.
  cc -static -s -O2 -Wall -Wextra -Werror -o "$out" $sources "$@"
  echo "$want" > "$stamp"
}

build hooks/mountat-hook native/hook-launcher.c "" -DMOUNTAT_NODE="\"$node_path\""
# libseccomp (Debian's libseccomp-dev): the starter's seccomp filters (native/starter/filter.c,
# broker.c). Without it (a build root made before the starter needed it, say) the compiler's
# error would be far from its cause: say it first.
static_libseccomp() {
  printf '#include <seccomp.h>\nint main(void) { return seccomp_version() == 0; }\n' | cc -static -x c - -o /dev/null -lseccomp 2>/dev/null || {
    echo "build-native: dist/mountat-action links libseccomp statically: install libseccomp-dev (scripts/setup.sh does)" >&2
    exit 1
  }
}
precheck=static_libseccomp build dist/mountat-action "$(echo native/starter/*.c)" "$(echo native/starter/*.h)" -lseccomp
