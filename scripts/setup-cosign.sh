#!/usr/bin/env bash
# Builds the real cosign CLI (an independent signer for the verification tests) from the Go module proxy:
# v2 writes legacy `sha256-<hex>.sig` signatures, v3 writes sigstore bundles as OCI referrers.
# Cached outside the repo, keyed by version; skipped when the binaries exist. Cold: about 10 minutes per version.
# cosign has no `replace` directives, so `go install module@version` is the whole build.
set -euo pipefail
TOOLS="${SIGPIN_TOOLS:-$HOME/.cache/sigpin-tools}"
COSIGN_V2=v2.6.5
COSIGN_V3=v3.1.3
build() { # module-path version
  local dest="$TOOLS/cosign-$2"
  if [ -x "$dest/cosign" ]; then return 0; fi
  command -v go >/dev/null 2>&1 || { echo "setup-cosign: go not installed" >&2; exit 1; }
  mkdir -p "$dest.tmp"
  echo "setup-cosign: building $1@$2 (cached in $dest)" >&2
  GOBIN="$dest.tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$1/cmd/cosign@$2"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}
build github.com/sigstore/cosign/v2 "$COSIGN_V2"
build github.com/sigstore/cosign/v3 "$COSIGN_V3"
