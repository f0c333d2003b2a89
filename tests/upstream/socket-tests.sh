#!/usr/bin/env bash
# Runs upstream Qubes' own qrexec socket test suite (qubes-core-qrexec's qrexec/tests/socket:
# daemon.py and agent.py, which drive qrexec-daemon, qrexec-client, qrexec-agent and
# qrexec-client-vm over the vchan-socket transport) against this project's executables. Nothing of
# upstream's goes into this repository: give the path of a checkout of upstream's repository (for
# instance at tag v4.4.2); the suite is run from a scratch tree in which upstream's executables are
# replaced by ours.
# Usage: tests/upstream/socket-tests.sh UPSTREAM_CHECKOUT [--client-vm native|managed | --upstream DIR] [PYTEST ARGS...]
#   --client-vm: which qrexec-client-vm stands for upstream's (default: native, the one qubes use); managed: the C# client of the native build
#   --upstream DIR: run the suite on upstream's own executables instead, built into DIR by
#                   tests/upstream/build-upstream.sh (the suite's baseline on this machine)
#   --bash-as-sh:   run the suite with /bin/sh being bash, as on the distributions upstream tests on
#                   (a private mount namespace binds bash over dash): some of its services and
#                   commands use bash's `read` without a name, which dash refuses
# Prints pytest's report (a test that takes over 60 s fails as a hang) and, last,
# "upstream socket tests: N passed, M failed".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
upstream="$(cd "${1:?usage: socket-tests.sh UPSTREAM_CHECKOUT [--client-vm native|managed] [PYTEST ARGS...]}" && pwd)"; shift
client_vm=native
theirs=
if [ "${1:-}" = "--client-vm" ]; then client_vm=$2; shift 2; fi
if [ "${1:-}" = "--upstream" ]; then theirs="$(cd "$2" && pwd)"; shift 2; fi
bash_as_sh=
if [ "${1:-}" = "--bash-as-sh" ]; then bash_as_sh=1; shift; fi
for p in python3-psutil python3-pytest python3-pytest-timeout; do
    dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
bin="$root/artifacts/bin/qubes/aot"   # the native executables, which the system runs
[ -x "$bin/qrexec-daemon" ] || (cd "$root" && ./qubes build)
scratch="$(mktemp -d /tmp/qrexec-upstream-tests.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
cp -a "$upstream/qrexec" "$scratch/qrexec"
mkdir -p "$scratch/daemon" "$scratch/agent" "$scratch/libqrexec"
if [ -n "$theirs" ]; then
    for p in daemon/qrexec-daemon daemon/qrexec-client agent/qrexec-agent agent/qrexec-client-vm; do
        ln -s "$theirs/$p" "$scratch/$p"
    done
    cp -P "$theirs"/libqrexec/* "$theirs"/lib/* "$scratch/libqrexec/"
else
ln -s "$bin/qrexec-daemon" "$scratch/daemon/qrexec-daemon"
ln -s "$bin/qrexec-client" "$scratch/daemon/qrexec-client"
ln -s "$bin/qrexec-agent" "$scratch/agent/qrexec-agent"
fi
if [ -n "$theirs" ]; then
    :
elif [ "$client_vm" = native ]; then
    ln -s "$root/artifacts/native/qrexec-client-vm" "$scratch/agent/qrexec-client-vm"
else
    ln -s "$bin/qrexec-client-vm" "$scratch/agent/qrexec-client-vm"
fi
cd "$scratch"
set +e
pytest=(/usr/bin/python3 -m pytest -q -p no:cacheprovider --timeout=60 -rf "$@" qrexec/tests/socket/daemon.py qrexec/tests/socket/agent.py)
if [ -n "$bash_as_sh" ]; then
    unshare -m --propagation private sh -c 'mount --bind "$(readlink -f /bin/bash)" "$(readlink -f /bin/sh)" && exec "$@"' sh "${pytest[@]}" | tee "$scratch/report"
else
    "${pytest[@]}" | tee "$scratch/report"
fi
status=${PIPESTATUS[0]}
set -e
summary=$(tail -n 1 "$scratch/report")
passed=$(echo "$summary" | grep -o '[0-9]* passed' | cut -d' ' -f1)
failed=$(echo "$summary" | grep -o '[0-9]* failed' | cut -d' ' -f1)
errors=$(echo "$summary" | grep -o '[0-9]* error' | cut -d' ' -f1)
echo "upstream socket tests: ${passed:-0} passed, $(( ${failed:-0} + ${errors:-0} )) failed"
exit $status
