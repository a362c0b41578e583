#!/usr/bin/env bash
# Applies the formatter `npm run lint` checks: Prettier (prettier.config.js, .prettierignore).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lint-tools.sh
ensure_lint_tools
node_modules/.bin/prettier --write --log-level warn .
