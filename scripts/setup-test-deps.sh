#!/usr/bin/env bash
# Installs the real components the tests run against: Debian packages now; Go tools are added by their own
# scripts (scripts/setup-*.sh) and cached outside the repo, keyed by version.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing: ${need[*]} (install them with apt-get as root)" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for s in scripts/setup-*.sh; do
  [ "$s" = scripts/setup-test-deps.sh ] && continue
  bash "$s"
done
