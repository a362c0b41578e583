#!/usr/bin/env bash
# Installs what mountat needs to build and run, then builds. Safe to run again: each step is
# skipped when already done. Extra Debian packages can be named as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

# libc6-dev: the static libc the hook launcher and the starter link against (hooks/launcher.c);
# libseccomp-dev: the static libseccomp the starter links against (native/starter/filter.c, broker.c).
packages=(libc6-dev libseccomp-dev "$@")
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || packages+=(busybox-static)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
