#!/usr/bin/env bash
# Compares our "safe for display" code points (spec filecopy §6.3: src/Qubes.FileCopy/
# SafeCodePoints.Table.cs plus the printable ASCII that SafeCodePoints.IsSafe accepts itself) with
# upstream Qubes' allow-list, the case ranges of qrexec-lib/unicode-allowlist-table.c. Nothing of
# upstream's goes into this repository: give the path of a checkout of upstream's repository.
# Usage: tests/upstream/unicode-table-compare.sh UPSTREAM_LINUX_UTILS_CHECKOUT
#   UPSTREAM_LINUX_UTILS_CHECKOUT  a checkout of QubesOS/qubes-linux-utils
# Builds native/unicode-safe-gen.c against this machine's ICU (installs gcc, pkg-config and
# libicu-dev if missing) to say whether our table is what that ICU generates, and to explain each
# difference: every run of code points allowed by one side only is printed with its length and
# the properties this ICU gives its first and last code point (general category, bidi class,
# script, Unicode age; "age=unassigned" means newer than this ICU's Unicode). Prints, last,
# "unicode table: N code points differ".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
upstream="$(cd "${1:?usage: unicode-table-compare.sh UPSTREAM_LINUX_UTILS_CHECKOUT}" && pwd)"
theirs_file="$upstream/qrexec-lib/unicode-allowlist-table.c"
ours_file="$root/src/Qubes.FileCopy/SafeCodePoints.Table.cs"
[ -f "$theirs_file" ] || { echo "no qrexec-lib/unicode-allowlist-table.c in $upstream" >&2; exit 2; }
for p in gcc pkg-config libicu-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
work="$(mktemp -d /tmp/unicode-compare.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2046  # pkg-config's flags are meant to be split
gcc -std=c11 -Wall -Wextra -Werror -O2 "$root/native/unicode-safe-gen.c" -o "$work/gen" $(pkg-config --cflags --libs icu-uc)

# "FIRST LAST" hexadecimal lines -> every code point, decimal, zero-padded so that text order is number order
expand() {
    while read -r first last; do seq "$((16#$first))" "$((16#$last))"; done | awk '{ printf "%07d\n", $1 }' | sort -u
}

# upstream: "case 0x0000a1 ... 0x0000a5:" and "case 0x0000a7:"
sed -nE 's/^[[:space:]]*case 0x([0-9A-Fa-f]+)([[:space:]]*\.\.\.[[:space:]]*0x([0-9A-Fa-f]+))?[[:space:]]*:.*/\1 \3/p' "$theirs_file" |
    awk '{ print $1, ($2 == "" ? $1 : $2) }' > "$work/theirs.ranges"
[ -s "$work/theirs.ranges" ] || { echo "no case ranges found in $theirs_file" >&2; exit 2; }
# ours: "        0x0000A1, 0x0000A5," lines of RangeTable, and the ASCII fast path
{ echo "20 7E"; sed -nE 's/^[[:space:]]*0x([0-9A-Fa-f]+),[[:space:]]*0x([0-9A-Fa-f]+),[[:space:]]*$/\1 \2/p' "$ours_file"; } > "$work/ours.ranges"
expand < "$work/theirs.ranges" > "$work/theirs"
expand < "$work/ours.ranges" > "$work/ours"

ours_version="$(sed -nE 's/.*from (ICU version [0-9]+(\.[0-9]+)* \/ Unicode version [0-9]+(\.[0-9]+)*).*/\1/p' "$ours_file" | head -n 1)"
local_version="$("$work/gen" | sed -nE 's/.*from (ICU version [0-9]+(\.[0-9]+)* \/ Unicode version [0-9]+(\.[0-9]+)*).*/\1/p' | head -n 1)"
echo "ours:     $(wc -l < "$work/ours") code points, $((($(wc -l < "$work/ours.ranges") - 1))) ranges above ASCII, generated from ${ours_version:-an unknown version}"
if "$work/gen" | cmp -s - "$ours_file"; then
    echo "          (this machine's $local_version generates exactly this table)"
else
    echo "          (this machine's $local_version generates a different table: regenerate it with native/unicode-safe-gen.c)"
fi
theirs_commit=
if git -C "$upstream" rev-parse --git-dir >/dev/null 2>&1; then
    theirs_commit="$(git -C "$upstream" log -1 --format='%h, %ad' --date=short -- qrexec-lib/unicode-allowlist-table.c 2>/dev/null || true)"
fi
echo "upstream: $(wc -l < "$work/theirs") code points, $(wc -l < "$work/theirs.ranges") ranges${theirs_commit:+, table last changed in $theirs_commit} (the file does not record its ICU/Unicode version)"

# runs of consecutive code points allowed by one side only: "SIDE FIRST LAST" in decimal
comm -3 "$work/theirs" "$work/ours" |
    awk -F '\t' '{ side = ($1 != "") ? "upstream" : "ours"; c = ($1 != "" ? $1 : $2) + 0
                   if (n && side == run_side && c == last + 1) { last = c; next }
                   if (n) print run_side, first, last
                   run_side = side; first = c; last = c; n = 1 }
                 END { if (n) print run_side, first, last }' > "$work/runs"

total=0
while read -r side first last; do
    count=$((last - first + 1))
    total=$((total + count))
    if [ "$count" -eq 1 ]; then
        printf 'only %-8s U+%04X (1)\n' "$side" "$first"
        "$work/gen" --explain "$(printf '%X' "$first")" | sed 's/^/    /'
    else
        printf 'only %-8s U+%04X..U+%04X (%d)\n' "$side" "$first" "$last" "$count"
        "$work/gen" --explain "$(printf '%X' "$first")" "$(printf '%X' "$last")" | sed 's/^/    /'
    fi
done < "$work/runs"
echo "(explanations from this machine's $local_version)"
echo "unicode table: $total code points differ"
