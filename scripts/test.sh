#!/usr/bin/env bash
# The whole test suite: installs what the tests need (idempotent), then lint, format, types and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
npx --no-install eslint --max-warnings 0 .
npx --no-install prettier --check .
npx --no-install tsc -p tsconfig.json --noEmit
node --test --test-concurrency=2 --test-timeout=600000 'test/**/*.test.ts'
