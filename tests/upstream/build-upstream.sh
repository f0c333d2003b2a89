#!/usr/bin/env bash
# Builds upstream Qubes' qrexec executables (qrexec-daemon, qrexec-client, qrexec-agent,
# qrexec-client-vm) on upstream's vchan-socket transport, outside this repository, for the
# side-by-side comparisons (bench/upstream-compare.sh) and to check upstream's own test suite on
# this machine (tests/upstream/socket-tests.sh --upstream).
# Usage: tests/upstream/build-upstream.sh QREXEC_CHECKOUT VCHAN_SOCKET_CHECKOUT OUTDIR
#   QREXEC_CHECKOUT        a checkout of QubesOS/qubes-core-qrexec (e.g. tag v4.4.2)
#   VCHAN_SOCKET_CHECKOUT  a checkout of QubesOS/qubes-core-vchan-socket
#   OUTDIR                 gets daemon/, agent/ and libqrexec/ with the built programs and libraries
set -euo pipefail
qrexec="$(cd "${1:?usage: build-upstream.sh QREXEC_CHECKOUT VCHAN_SOCKET_CHECKOUT OUTDIR}" && pwd)"
vchan="$(cd "${2:?}" && pwd)"
out="${3:?}"
for p in gcc make pkg-config; do
    dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
build="$(mktemp -d /tmp/upstream-build.XXXXXX)"
trap 'rm -rf "$build"' EXIT
cp -a "$vchan" "$build/vchan-socket"
cp -a "$qrexec" "$build/qrexec"
make -s -C "$build/vchan-socket/vchan" PREFIX="$build/prefix" LIBDIR="$build/prefix/lib" >/dev/null
install -D -m 0644 "$build/vchan-socket/vchan/libvchan.h" "$build/prefix/include/vchan-socket/libvchan.h"
install -D -m 0644 "$build/vchan-socket/vchan/vchan-socket.pc" "$build/prefix/lib/pkgconfig/vchan-socket.pc"
install -D "$build/vchan-socket/vchan/libvchan-socket.so" "$build/prefix/lib/libvchan-socket.so"
export PKG_CONFIG_PATH="$build/prefix/lib/pkgconfig"
export LDFLAGS="-L$build/prefix/lib -Wl,-rpath,$out/libqrexec:$out/lib"
make -s -C "$build/qrexec/libqrexec" BACKEND_VMM=socket all >/dev/null
make -s -C "$build/qrexec/agent" BACKEND_VMM=socket qrexec-agent qrexec-client-vm >/dev/null
make -s -C "$build/qrexec/daemon" BACKEND_VMM=socket qrexec-daemon qrexec-client >/dev/null
mkdir -p "$out/daemon" "$out/agent" "$out/libqrexec" "$out/lib"
cp "$build/qrexec/daemon/qrexec-daemon" "$build/qrexec/daemon/qrexec-client" "$out/daemon/"
cp "$build/qrexec/agent/qrexec-agent" "$build/qrexec/agent/qrexec-client-vm" "$out/agent/"
cp -P "$build/qrexec/libqrexec/"libqrexec-utils.so* "$out/libqrexec/"
cp "$build/prefix/lib/libvchan-socket.so" "$out/lib/"
echo "upstream qrexec built into $out: $(ls "$out/daemon" "$out/agent" | tr '\n' ' ')"
