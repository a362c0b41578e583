# Sourced by scripts/lint.sh and scripts/format.sh: what both need.

# ESLint, Prettier and tsc come with `npm ci` (devDependencies).
ensure_lint_tools() {
  if [ ! -x node_modules/.bin/eslint ] || [ ! -x node_modules/.bin/prettier ]; then
    npm ci --no-audit --no-fund
  fi
}
