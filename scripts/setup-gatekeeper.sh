#!/usr/bin/env bash
# Pre-builds the Gatekeeper engine harness (test/gatekeeper: Gatekeeper v3.23.0 and the frameworks version it
# pins, its own go.mod) into the tools cache, so test/gatekeeper/harness.test.ts starts it in seconds.
# The binary is keyed by a hash of go.mod, go.sum and the harness sources: a warm run only hashes and exits.
# Modules come from the module cache (offline) when they are there, else from the Go proxy once.
# Idempotent. Prints the binary path last.
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=test/gatekeeper
TOOLS="${SIGPIN_TOOLS:-$HOME/.cache/sigpin-tools}"
hash=$(cd "$HARNESS" && cat go.mod go.sum $(ls ./*.go | LC_ALL=C sort) | sha256sum | cut -c1-16)
BASE="$TOOLS/gatekeeper-harness-v3.23.0"
DEST="$BASE/$hash"
if [ -x "$DEST/harness.test" ]; then
  echo "$DEST/harness.test"
  exit 0
fi
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || { echo "setup-gatekeeper: go not found (needed to build the harness)" >&2; exit 1; }
mkdir -p "$BASE"
# One build at a time (parallel test runs share the cache); re-check once the lock is ours.
exec 9>"$BASE.lock"
flock 9
if [ -x "$DEST/harness.test" ]; then
  echo "$DEST/harness.test"
  exit 0
fi
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
build() { (cd "$HARNESS" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go test -c -o "$DEST.tmp/harness.test" .); }
if ! GOPROXY=off build 2>"$DEST.tmp/offline.log"; then
  echo "setup-gatekeeper: module cache incomplete, downloading modules (first run: several minutes)" >&2
  (cd "$HARNESS" && go mod download)
  build
fi
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
# Keep only the current build: older hashes are dead weight.
for old in "$BASE"/*; do
  [ "$old" = "$DEST" ] || rm -rf "$old"
done
echo "$DEST/harness.test"
