#!/usr/bin/env bash
# A skopeo that signs cosign-compatible (sigstore) signatures, used by tests as an independent signer.
# Debian bookworm's skopeo 1.9 is built without sigstore signing; Debian trixie's 1.18 has it. Trixie's binary
# needs trixie's glibc, so its .debs are unpacked (never installed) into a cache folder and the binary runs
# through trixie's own dynamic loader. apt uses a private state folder, so the system's apt state is untouched.
# Usage: scripts/setup-skopeo-sigstore.sh [DEST]   (default ${SIGPIN_TOOLS:-$HOME/.cache/sigpin-tools}/skopeo-1.18)
# Result: DEST/skopeo (wrapper). Idempotent: does nothing when a working wrapper is already there.
set -euo pipefail

DEST=${1:-${SIGPIN_TOOLS:-$HOME/.cache/sigpin-tools}/skopeo-1.18}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
WRAPPER="$DEST/skopeo"
PACKAGES=(skopeo libc6 libgcc-s1 libgpgme11t64 libassuan9 libgpg-error0 libsqlite3-0)

ready() { [ -x "$WRAPPER" ] && "$WRAPPER" --version >/dev/null 2>&1; }
ready && exit 0

# Concurrent test processes may ask at once: one installs, the others wait and reuse its result.
exec 9>"$DEST.lock"
flock 9
ready && exit 0

[ "$(uname -m)" = x86_64 ] || { echo "setup-skopeo-sigstore: only x86_64 is supported" >&2; exit 1; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
  { echo "setup-skopeo-sigstore: needs apt-get and dpkg-deb (Debian/Ubuntu)" >&2; exit 1; }

# The Debian mirror this machine already uses (deb822 "URIs:" or one-line "deb" sources).
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
  grep -oE '(URIs:|deb)( \[[^]]*\])? +https?://[^ ]+/debian/?( |$)' | grep -oE 'https?://[^ ]+' | head -n1 || true)
[ -n "$mirror" ] || { echo "setup-skopeo-sigstore: no Debian mirror in the apt sources" >&2; exit 1; }

state="$DEST/apt"
rm -rf "$state" "$DEST/root" "$WRAPPER"
mkdir -p "$state"/{lists/partial,archives/partial,debs} "$DEST/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} trixie main" >"$state/sources.list"
: >"$state/status"
apt_opts=(-o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state" -o Dir::Cache::archives="$state/archives"
  -o Dir::State::status="$state/status" -o APT::Architecture=amd64 -o Acquire::Languages=none
  -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -qq update
(cd "$state/debs" && apt-get "${apt_opts[@]}" -qq download "${PACKAGES[@]}")
for deb in "$state"/debs/*.deb; do dpkg-deb -x "$deb" "$DEST/root"; done
rm -rf "$state"

cat >"$WRAPPER.tmp" <<WRAP
#!/bin/sh
# Runs Debian trixie's skopeo with trixie's own loader and libraries (see scripts/setup-skopeo-sigstore.sh).
R='$DEST/root'
exec "\$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "\$R/usr/lib/x86_64-linux-gnu" "\$R/usr/bin/skopeo" "\$@"
WRAP
chmod +x "$WRAPPER.tmp"
mv "$WRAPPER.tmp" "$WRAPPER"
"$WRAPPER" --version
