#!/usr/bin/env bash
# Two-way bulk calls under stress, over upstream's vchan-socket transport: qubes work (domain 42)
# and personal (43), each with a qrexec-agent and a qrexec-daemon, and a policy program that allows;
# then COUNT times, with each client, a call that echoes SIZE random bytes back while they are still
# being sent (`cat` in the target), its output checked against its input:
#   qrexec-client            dom0 -> work, `root:cat`
#   qrexec-client-vm native  work -> personal, service bench.Echo (`exec cat`)
#   qrexec-client-vm managed the same, the full C# client
# A call that takes over 60 s counts as a hang. Ours throughout by default; --agent DIR runs
# upstream's qrexec-agent (built into DIR by tests/upstream/build-upstream.sh) in both qubes, under
# our daemons and clients.
# Usage: tests/upstream/echo-stress.sh [--count N] [--mib M] [--agent UPSTREAM_BIN]
# Prints one line per client and, last, "echo stress: N passed, M failed (H hangs)"; exits 1 on any failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
count=50 mib=64 upstream=
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=$2; shift 2 ;;
        --mib) mib=$2; shift 2 ;;
        --agent) upstream="$(cd "$2" && pwd)"; shift 2 ;;
        *) echo "echo-stress: unknown argument $1" >&2; exit 2 ;;
    esac
done
bin="$root/artifacts/bin/qubes/release"
[ -x "$bin/qrexec-daemon" ] || (cd "$root" && ./qubes build >/dev/null)
agent="$bin/qrexec-agent"
if [ -n "$upstream" ]; then
    agent="$upstream/agent/qrexec-agent"
    export LD_LIBRARY_PATH="$upstream/libqrexec:$upstream/lib"
fi
dir="$(mktemp -d /tmp/qrexec-echo-stress.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
mkdir "$dir/rpc"
printf '#!/bin/sh\nexec cat\n' > "$dir/rpc/bench.Echo"
printf '#!/bin/sh\nprintf '"'"'result=allow\\nautostart=True\\nuser=root\\ntarget=%%s\\nrequested_target=%%s\\n'"'"' "$3" "$3"\n' > "$dir/policy"
chmod +x "$dir/rpc/bench.Echo" "$dir/policy"
export VCHAN_SOCKET_DIR="$dir"
for q in 42:work 43:personal; do
    VCHAN_DOMAIN=${q%%:*} QREXEC_SERVICE_PATH="$dir/rpc" "$agent" --no-fork-server --agent-socket="$dir/agent-${q#*:}.sock" 2>>"$dir/agent-${q#*:}.log" &
    pids+=($!)
done
for q in 42:work 43:personal; do
    VCHAN_DOMAIN=0 "$bin/qrexec-daemon" --uuid="00000000-0000-0000-0000-0000000000${q%%:*}" --socket-dir="$dir" \
        --policy-program="$dir/policy" --direct "${q%%:*}" "${q#*:}" 2>>"$dir/daemon-${q#*:}.log" &
    pids+=($!)
done
for q in work personal; do
    for _ in $(seq 300); do [ -S "$dir/qrexec.$q" ] && break; sleep 0.1; done
    [ -S "$dir/qrexec.$q" ] || { echo "echo-stress: the daemon of $q did not start" >&2; exit 1; }
done
head -c $((mib << 20)) /dev/urandom > "$dir/input"
want="$(sha256sum < "$dir/input")"
native="$root/artifacts/native/qrexec-client-vm"
passed=0 failed=0 hangs=0
run() { # NAME COMMAND...
    local name=$1 ok=0 bad=0 hung=0 t0 t1 status
    shift
    t0=$(date +%s.%N)
    for _ in $(seq "$count"); do
        status=0
        timeout 60 "$@" < "$dir/input" > "$dir/output" 2>"$dir/stderr" || status=$?
        if [ "$status" = 124 ]; then
            hung=$((hung + 1))
        elif [ "$status" = 0 ] && [ "$(sha256sum < "$dir/output")" = "$want" ]; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1)); echo "  $name: exit $status, $(wc -c < "$dir/output") bytes back; $(head -c 300 "$dir/stderr")" >&2
        fi
    done
    t1=$(date +%s.%N)
    printf '%-26s %d/%d echoed intact, %d failed, %d hung (%.1f s)\n' "$name" "$ok" "$count" "$bad" "$hung" "$(echo "$t1 - $t0" | bc)"
    passed=$((passed + ok)); failed=$((failed + bad + hung)); hangs=$((hangs + hung))
}
echo "echo stress: $count two-way calls of $mib MiB per client over vchan-socket; agents: $([ -n "$upstream" ] && echo "upstream's" || echo ours), daemons and clients: ours"
run "qrexec-client (dom0)" env VCHAN_DOMAIN=0 "$bin/qrexec-client" --socket-dir="$dir" -d work root:cat
run "qrexec-client-vm native" env VCHAN_DOMAIN=42 "$native" --agent-socket="$dir/agent-work.sock" personal bench.Echo
run "qrexec-client-vm managed" env VCHAN_DOMAIN=42 "$bin/qrexec-client-vm" --agent-socket="$dir/agent-work.sock" personal bench.Echo
echo "echo stress: $passed passed, $failed failed ($hangs hangs)"
[ "$failed" = 0 ]
