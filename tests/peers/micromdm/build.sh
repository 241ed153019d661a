#!/bin/sh
# Builds micromdm-scepserver (main.go here, against Debian's golang-github-micromdm-scep-dev)
# into OUTDIR, offline, as root or not, with HOME unset:
#
#   tests/peers/micromdm/build.sh OUTDIR      -> OUTDIR/micromdm-scepserver
#
# GOPATH mode (GO111MODULE=off) with /usr/share/gocode second in GOPATH: Debian installs Go
# libraries there, not in a module cache, and nothing may be fetched. micromdm's packages
# import each other as github.com/micromdm/scep/v2/...; GOPATH mode resolves those only for
# code inside a GOPATH tree with its own go.mod ("minimal module compatibility"), so main.go
# and go.mod are copied to OUTDIR/gopath/src/certconn-micromdm-peer/ and built there.
# GOCACHE and GOPATH live under OUTDIR. Rebuilt only when main.go or go.mod changed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=$out/micromdm-scepserver
src=$out/gopath/src/certconn-micromdm-peer

command -v go >/dev/null 2>&1 || { echo "build.sh: no go (apt-get install golang-go)" >&2; exit 1; }
[ -f /usr/share/gocode/src/github.com/micromdm/scep/go.mod ] || {
	echo "build.sh: no micromdm/scep (apt-get install golang-github-micromdm-scep-dev)" >&2
	exit 1
}
# A lock: a test and a bench may build at once into the same OUTDIR.
exec 9>"$out/.build.lock"
flock 9
if [ -x "$bin" ] && [ "$bin" -nt "$here/main.go" ] && [ "$bin" -nt "$here/go.mod" ]; then
	exit 0
fi
mkdir -p "$src"
cp "$here/main.go" "$here/go.mod" "$src/"
cd "$src"
# GOFLAGS emptied: a caller's -mod=mod (or anything else) must not make go look for modules.
env -u GOROOT GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
	GOPATH="$out/gopath:/usr/share/gocode" GOCACHE="$out/gocache" \
	go build -o "$bin.tmp" . 2>&1 | sed 's/^/build.sh: /' >&2 || true
if [ ! -x "$bin.tmp" ]; then
	echo "build.sh: go build failed" >&2
	exit 1
fi
mv -f "$bin.tmp" "$bin"
