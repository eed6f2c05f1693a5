#!/usr/bin/env bash
# Builds the Kyverno CLI used by test/kyverno/*.test.ts from tools/kyverno/go.mod into a cache outside the repo,
# keyed by version. Idempotent: does nothing when the cached binary already exists.
# Needs Go >= 1.26.5 (Kyverno v1.19.0's go directive; GOTOOLCHAIN=auto fetches it when the local Go is older).
set -euo pipefail
cd "$(dirname "$0")/.."
version=v1.19.0
dir="${SIGPIN_TOOLS:-$HOME/.cache/sigpin-tools}/kyverno-${version}"
bin="$dir/kyverno"
if [ -x "$bin" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "setup-kyverno: go not found; install Go >= 1.26.5 to build the Kyverno CLI ${version}" >&2
  exit 1
fi
mkdir -p "$dir"
echo "setup-kyverno: building Kyverno CLI ${version} into ${bin} (slow on a cold module cache)" >&2
tmp="$(mktemp "$dir/kyverno.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# Same flags as Kyverno's Makefile (static, stripped, version stamped); -mod=readonly keeps go.sum authoritative.
(cd tools/kyverno && CGO_ENABLED=0 go build -mod=readonly -trimpath \
  -ldflags "-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=${version}" \
  -o "$tmp" github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno)
chmod 0755 "$tmp"
# Rename last so an interrupted build never leaves a binary that the idempotence check would trust.
mv -f "$tmp" "$bin"
trap - EXIT
"$bin" version >&2
