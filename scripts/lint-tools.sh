# Sourced by scripts/lint.sh and scripts/format.sh: what both need.

# The C that clang-format keeps in shape (.clang-format): the starter and the hook launcher, and
# the C programs of the tests and the benchmark. Found by find, not git: a new file counts at once.
# step-names.h and seccomp-policy.h are written by scripts/generate-types.mjs, whose --check wants them as generated.
c_sources() {
  find native test/fixtures bench -type f \( -name '*.c' -o -name '*.h' \) ! -path native/starter/step-names.h ! -path native/starter/seccomp-policy.h | sort
}

# ESLint, Prettier and tsc come with `npm ci` (devDependencies); clang-format is Debian's
# (apt, as root, as scripts/setup.sh installs the rest).
ensure_lint_tools() {
  if [ ! -x node_modules/.bin/eslint ] || [ ! -x node_modules/.bin/prettier ]; then
    npm ci --no-audit --no-fund
  fi
  if ! command -v clang-format >/dev/null; then
    echo "lint: installing clang-format (Debian)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-format >/dev/null
  fi
}
