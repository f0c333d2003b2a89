#!/usr/bin/env bash
# What running qubes hold while idle, and how many run at once: for the native executables
# (artifacts/bin/qubes/aot/) and then the runtime build (artifacts/bin/qubes/release/), each on a
# system of its own (qubes up in a temporary state directory), in one sitting:
#   N qubes created and started with one qvm-start, left idle, then
#   per qube: PSS (from /proc/PID/smaps_rollup) of its qrexec-agent and of its qrexec-daemon in dom0,
#             summed over all of them and divided by N (shared code counted once, as PSS does);
#   answered: how many of the N answer `qvm-run -p qI 'echo ok'`;
#   host:     the machine's used memory (MemTotal - MemAvailable) before `qubes up` and with the N running.
# Usage: bench/idle-memory.sh [--qubes N] [--idle S] [--native-only]
# Needs root and a built checkout (./qubes build). Last line: "idle qube native MB: X".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
qubes=20 idle=5 builds="aot release"
while [ $# -gt 0 ]; do
    case "$1" in
        --qubes) qubes=$2; shift 2 ;;
        --idle) idle=$2; shift 2 ;;
        --native-only) builds=aot; shift ;;
        *) echo "idle-memory: unknown argument $1" >&2; exit 2 ;;
    esac
done
work="$(mktemp -d /tmp/idle-memory.XXXXXX)"
current=""
trap '[ -z "$current" ] || QUBES_STATE_DIR="$work/$current" "$root/artifacts/bin/qubes/$current/qubes" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

used_mib() { awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {printf "%d", (t - a) / 1024}' /proc/meminfo; }
pss_kb() { local total=0 p; for p in "$@"; do total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done; echo "$total"; }

for build in $builds; do
    bin="$root/artifacts/bin/qubes/$build"
    [ -x "$bin/qubes" ] || { echo "idle-memory: $bin/qubes is not built (./qubes build)" >&2; exit 1; }
    name=$([ "$build" = aot ] && echo native || echo runtime)
    q() { QUBES_STATE_DIR="$work/$build" "$bin/$1" "${@:2}"; }
    before=$(used_mib)
    current=$build
    q qubes up >/dev/null
    for i in $(seq 1 "$qubes"); do q qvm-create "q$i" -l red >/dev/null; done
    t0=$(date +%s%N)
    q qvm-start $(seq -f 'q%g' 1 "$qubes") >/dev/null
    t1=$(date +%s%N)
    sleep "$idle"
    # one system runs at a time: every qrexec-agent is one of its qubes', every qrexec-daemon one of its qubes' daemon
    mapfile -t agents < <(pgrep -x qrexec-agent)
    mapfile -t daemons < <(pgrep -x qrexec-daemon)
    agent_kb=$(pss_kb "${agents[@]}") daemon_kb=$(pss_kb "${daemons[@]}")
    host=$(used_mib)
    answered=0
    for i in $(seq 1 "$qubes"); do
        [ "$(q qvm-run -p "q$i" 'echo ok' 2>/dev/null)" = ok ] && answered=$((answered + 1))
    done
    q qubes down >/dev/null
    current=""
    awk -v n="$qubes" -v a="$agent_kb" -v d="$daemon_kb" -v na="${#agents[@]}" -v nd="${#daemons[@]}" -v s="$(( (t1 - t0) / 1000000 ))" \
        -v b="$before" -v h="$host" -v ok="$answered" -v name="$name" 'BEGIN {
        printf "idle-memory: %s: %d qubes started in %.1f s (%d agents, %d daemons running); per qube agent %.2f MB + daemon %.2f MB = %.2f MB PSS; answered %d/%d; host used %d -> %d MiB\n",
            name, n, s / 1000, na, nd, a / n / 1000, d / n / 1000, (a + d) / n / 1000, ok, n, b, h
    }' | tee -a "$work/summary"
done
grep -o 'native: .* = [0-9.]* MB' "$work/summary" | awk '{print "idle qube native MB: " $(NF-1)}'
