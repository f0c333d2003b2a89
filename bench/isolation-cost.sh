#!/usr/bin/env bash
# What the qubes' isolation costs: the same measurements on two builds of this project in one
# sitting, each on a system of its own (qubes up in a temporary state directory), alternating
# between the builds round by round so that the machine's noise falls on both:
#   start     wall time of `qvm-start QUBE` (the tool's own start included), per start
#   memory    idle PSS of a running qube's processes: its launcher and everything in it, and its
#             qrexec-daemon in dom0 (from /proc/PID/smaps_rollup), per qube
#   call      p50 of a VM->VM qrexec call (qrexec-client-vm to a `cat` service), timed inside the qube
#   many      N qubes started at once: how many run, the wall time, the host memory they take
# Usage: bench/isolation-cost.sh BASELINE_CHECKOUT [THIS_CHECKOUT] [--rounds R] [--qubes N] [--calls C]
# Both checkouts must be built (./qubes build). Prints min/median/max per build and the ratios
# this/baseline of the medians; needs root.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="${1:?usage: bench/isolation-cost.sh BASELINE_CHECKOUT [THIS_CHECKOUT] [--rounds R] [--qubes N] [--calls C]}"; shift
this="$here"
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then this="$1"; shift; fi
rounds=5 many=50 calls=200
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --qubes) many=$2; shift 2 ;;
        --calls) calls=$2; shift 2 ;;
        *) echo "isolation-cost: unknown argument $1" >&2; exit 2 ;;
    esac
done
base="$(cd "$base" && pwd)"
this="$(cd "$this" && pwd)"
work="$(mktemp -d /tmp/isolation-cost.XXXXXX)"
trap 'for b in base this; do QUBES_STATE_DIR="$work/$b" "$(tool_of $b)" down >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT

tool_of() { if [ "$1" = base ]; then echo "$base/artifacts/bin/qubes/release/qubes"; else echo "$this/artifacts/bin/qubes/release/qubes"; fi; }
q() { local b=$1; shift; QUBES_STATE_DIR="$work/$b" "$(tool_of "$b")" "$@"; }
now_ms() { date +%s%N | awk '{printf "%.3f", $1 / 1e6}'; }
stats() { sort -n | awk '{v[NR]=$1} END {if (NR == 0) {print "- / - / -"; exit} printf "%.3f / %.3f / %.3f", v[1], v[int((NR+1)/2)], v[NR]}'; }
median() { sort -n | awk '{v[NR]=$1} END {printf "%.3f", v[int((NR+1)/2)]}'; }

# the processes of a running qube: its launcher and all below it, and its qrexec-daemon
qube_pids() {
    local b=$1 name=$2 launcher
    launcher=$(pgrep -f "qube-sandbox --name $name .*$work/$b/" | head -n 1)
    [ -n "$launcher" ] || return 0
    echo "$launcher"
    local level="$launcher"
    while [ -n "$level" ]; do
        level=$(for p in $level; do pgrep -P "$p"; done)
        [ -n "$level" ] && echo "$level"
    done
    pgrep -f "qrexec-daemon .*socket-dir=$work/$b/run/qrexec .* $name user\$" || true
}
pss_kb() { local total=0; for p in "$@"; do total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done; echo $total; }

for b in base this; do
    dir=$([ $b = base ] && echo "$base" || echo "$this")
    echo "isolation-cost: $b: $dir at $(git -C "$dir" log --oneline -1 2>/dev/null | cut -c1-60)"
    q $b up >/dev/null
    mkdir -p "$work/$b.out"
    printf 'test.Echo * @anyvm @anyvm allow\n' > "$work/$b/policy.d/10-bench.policy"
    q $b qvm-run -u root -p debian-12 'printf "#!/bin/sh\nexec cat\n" > /etc/qubes-rpc/test.Echo && chmod +x /etc/qubes-rpc/test.Echo' >/dev/null
    q $b qvm-shutdown --wait debian-12 >/dev/null
    for i in $(seq 1 "$rounds"); do q $b qvm-create "s$i" -l red >/dev/null; done
done

for i in $(seq 1 "$rounds"); do
    for b in base this; do
        t0=$(now_ms); q $b qvm-start "s$i" >/dev/null; t1=$(now_ms)
        awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}' >> "$work/$b.out/start"
        sleep 2 # idle
        pss_kb $(qube_pids $b "s$i") >> "$work/$b.out/pss"
    done
done

for b in base this; do
    # a VM->VM call, timed inside the calling qube (bash's clock), `calls` times
    q $b qvm-run -p s1 "for i in \$(seq 1 $calls); do s=\$EPOCHREALTIME; echo x | qrexec-client-vm s2 test.Echo > /dev/null; e=\$EPOCHREALTIME; echo \"\$s \$e\"; done" \
        | awk '{printf "%.3f\n", ($2 - $1) * 1000}' > "$work/$b.out/call"
    for i in $(seq 1 "$rounds"); do q $b qvm-shutdown --wait "s$i" >/dev/null; done
done

for b in base this; do
    for i in $(seq 1 "$many"); do q $b qvm-create "m$i" -l green >/dev/null; done
    used0=$(free -m | awk '/^Mem:/ {print $3}')
    t0=$(now_ms)
    q $b qvm-start $(seq -f 'm%g' 1 "$many") > "$work/$b.out/many.log" 2>&1 || true
    t1=$(now_ms)
    sleep 3
    running=$(q $b qvm-ls --raw-data --fields name,state | grep -c '^m[0-9]*|Running$' || true)
    used1=$(free -m | awk '/^Mem:/ {print $3}')
    echo "$running $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1000}') $((used1 - used0))" > "$work/$b.out/many"
    q $b down >/dev/null
done

echo
printf '%-34s %-34s %-34s %s\n' "min / median / max" "baseline" "this build" "ratio this/baseline (medians)"
for m in start pss call; do
    unit=$([ $m = pss ] && echo "KB" || echo "ms")
    bm=$(median < "$work/base.out/$m"); tm=$(median < "$work/this.out/$m")
    printf '%-34s %-34s %-34s %s\n' "$m ($unit)" "$(stats < "$work/base.out/$m")" "$(stats < "$work/this.out/$m")" "$(awk -v a="$bm" -v b="$tm" 'BEGIN {printf "%.2f", b / a}')"
done
read -r bn bt bmem < "$work/base.out/many"; read -r tn tt tmem < "$work/this.out/many"
printf '%-34s %-34s %-34s\n' "$many qubes at once: running, s, MB" "$bn, $bt s, $bmem MB" "$tn, $tt s, $tmem MB"
echo "qube start p50 ms: $(median < "$work/this.out/start")"
