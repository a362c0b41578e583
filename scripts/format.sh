#!/usr/bin/env bash
# Applies the formatters `npm run lint` checks: Prettier (prettier.config.js, .prettierignore) and
# clang-format (.clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lint-tools.sh
ensure_lint_tools
node_modules/.bin/prettier --write --log-level warn .
c_sources | xargs clang-format -i
