#!/usr/bin/env bash
# Side by side with upstream Qubes' C qrexec on this machine, in one sitting: the latency of a
# trivial VM->VM call (a new qrexec-client-vm per call, p50) and the throughput of a VM->VM stream,
#   - upstream's qrexec-daemon, qrexec-agent and qrexec-client-vm over upstream's vchan-socket
#     transport (every vchan a Unix socket), as upstream's socket test suite runs them;
#   - ours, the same layout and transport;
#   - ours on the loopback hypervisor's shared-memory vchan (sandboxed qubes, the policy daemon);
# the rounds alternate between them, and it prints min/median/max per system and the ratios
# ours/upstream (and the loopback stream against a Unix-socket relay of the same bytes).
# Usage: bench/upstream-compare.sh UPSTREAM_BIN [--count N] [--rounds R] [--mib M]
#   UPSTREAM_BIN  upstream's executables as tests/upstream/build-upstream.sh lays them out
#                 (daemon/, agent/, libqrexec/, lib/); nothing of upstream's is in this repository
#   --count N     calls per system per round (default 200)
#   --rounds R    measured rounds, after one warm-up round (default 5)
#   --mib M       MiB per stream (default 1024)
# Needs root (the loopback qubes are namespaces); builds this project first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
upstream="$(cd "${1:?usage: bench/upstream-compare.sh UPSTREAM_BIN [--count N] [--rounds R] [--mib M]}" && pwd)"; shift
(cd "$root" && ./qubes build >/dev/null)
dotnet build -c Release -v q -nologo "$root/bench/Qubes.Bench/Qubes.Bench.csproj" >/dev/null
exec dotnet run -c Release --no-build --project "$root/bench/Qubes.Bench" -- qrexec-compare --upstream "$upstream" "$@"
