#!/usr/bin/env bash
# The qube sandbox on the kernel of a fresh Debian 12 (linux-image-amd64, 6.1) with the cgroup v2
# layout of such a machine, booted under QEMU: the machines that run CI have another kernel and the
# hybrid cgroup v1 layout, and a fresh Debian 12 is what the README promises. A busybox system runs
# native/qube-sandbox and native/qube-attack and checks, printing "SANDBOXTEST PASS|FAIL name":
#   ids          the qube's root is its own id range, its cgroup namespace its own
#   cgroup       the qube's cgroup v2 group with memory.max, pids.max and cpu.max as asked, removed after
#   cputime      the group's cpu.stat counts the CPU time of what runs in the qube (qubesd's cputime)
#   memory       a process past the memory limit is killed by the kernel, inside the qube
#   pids         processes stop at the pids limit
#   refused      mounts, namespaces, keys, handle-based opens and cgroup mounts are refused in the qube
#   template     a writable root layer (overlayfs over idmapped layers) takes the template's files,
#                stored with the qube's own ids
#   appvm        an AppVM sees them, owned by its own root, read-only
#   volume       the private volume (an idmapped ext4 image) stores the qube's own ids
#   link         a link planted as the private volume's home is not followed at the next start
# Last line: "sandbox-kernel run: N passed, M failed"; exit 0 only when every check passed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="${SANDBOX_KERNEL_WORK:-/tmp/qubes-sandbox-kernel}"
checks=(ids cgroup cputime memory pids refused template appvm volume link)
start=$(date +%s)

need=()
for p in qemu-system-x86 busybox-static cpio kmod e2fsprogs gcc libseccomp-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$work/debs"
if ! ls "$work"/debs/linux-image-*.deb >/dev/null 2>&1; then
    kimg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    [ -n "$kimg" ] || { echo "sandbox-kernel run: cannot resolve the kernel package of linux-image-amd64" >&2; exit 2; }
    (cd "$work/debs" && apt-get download -qq "$kimg" >/dev/null 2>&1)
fi
cd "$work"
rm -rf kx rd && mkdir -p kx rd
dpkg -x debs/linux-image-*.deb kx
kv=$(ls kx/lib/modules | head -n1)

# the machine's root, an ext4 file system as a Debian 12 root is (idmapped mounts need one; tmpfs
# has them only from Linux 6.3): usr-merged like Debian's, busybox as its programs
rm -rf root && mkdir -p root/usr/bin root/usr/lib/x86_64-linux-gnu root/usr/lib64 root/sandbox/layer/etc root/sandbox/layer/usr \
    root/proc root/sys root/dev root/tmp root/run rd/bin rd/mods rd/proc rd/newroot
ln -s usr/bin root/bin; ln -s usr/bin root/sbin; ln -s usr/lib root/lib; ln -s usr/lib64 root/lib64
cp /bin/busybox root/usr/bin/
for c in $(/bin/busybox --list); do [ -e "root/usr/bin/$c" ] || ln -s busybox "root/usr/bin/$c"; done
gcc -std=c11 -O2 -Wall -Werror "$root/native/qube-sandbox.c" -o root/sandbox/qube-sandbox -lseccomp
gcc -std=c11 -O2 -Wall -Werror "$root/native/qube-attack.c" -o root/sandbox/qube-attack
for lib in $(ldd root/sandbox/qube-sandbox root/sandbox/qube-attack | grep -o '/[^ ]*\.so[^ ]*' | sort -u); do
    cp -L "$lib" root/usr/lib/x86_64-linux-gnu/
done
cp -L /lib64/ld-linux-x86-64.so.2 root/usr/lib64/
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' > root/sandbox/layer/etc/passwd
printf 'root:x:0:\nuser:x:1000:\n' > root/sandbox/layer/etc/group
truncate -s 64M root/sandbox/private.img
mkfs.ext4 -q -F -m 0 -J size=4 -E lazy_itable_init=1,nodiscard root/sandbox/private.img

# the initramfs: busybox, the modules, the root image; it mounts the root and switches to it
cp /bin/busybox rd/bin/
for c in sh mount insmod switch_root mkdir; do ln -s busybox "rd/bin/$c"; done
for m in crypto/crc32c_generic lib/crc16 fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4 drivers/block/loop fs/overlayfs/overlay; do
    cp "kx/lib/modules/$kv/kernel/$m.ko" rd/mods/
done
cat > rd/init <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t devtmpfs dev /dev
for m in crc32c_generic crc16 mbcache jbd2 ext4 loop overlay; do insmod /mods/$m.ko || echo "SANDBOXTEST FAIL modules: $m"; done
mount -o loop /root.img /newroot || echo "SANDBOXTEST FAIL root: mount"
umount /dev /proc
exec switch_root /newroot /sandbox/checks
INIT
chmod +x rd/init

# the checks, on the machine's root
cat > root/sandbox/checks <<'CHECKS'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "SANDBOXTEST KERNEL $(uname -r) $(stat -f -c %T /sys/fs/cgroup)"
S=/sandbox/qube-sandbox A=/sandbox/qube-attack
base=1073807360
q() { # q NAME [launcher options]... -- PROGRAM...
    name=$1; shift
    mkdir -p /tmp/staging-$name
    $S --name $name --id-base $base --staging /tmp/staging-$name --root /sandbox/layer --private /sandbox/private.img \
       --memory 67108864 --pids 64 --cpus 1 --log /tmp/$name.log --bind-ro /sandbox --env PATH=/usr/bin:/bin "$@"
    cat /tmp/$name.log # what the qube printed: its console
}
pass() { echo "SANDBOXTEST PASS $1"; }
fail() { echo "SANDBOXTEST FAIL $1: $2"; }
check() { if eval "$2"; then pass $1; else fail $1 "$3"; fi; }

out=$(q ids -- /bin/sh -c 'id -u; cat /proc/self/uid_map; grep "^0::" /proc/self/cgroup')
check ids 'echo "$out" | grep -q "^0$" && echo "$out" | grep -q "0 *1073807360 *65536" && echo "$out" | grep -q "^0::/$"' "$out"

q cg -- /bin/sh -c 'sleep 3' > /dev/null & sleep 1.5
g=$(ls -d /sys/fs/cgroup/qubes-runtime/cg.* 2>/dev/null | head -n1)
limits="$(cat $g/memory.max 2>&1) $(cat $g/pids.max 2>&1) $(cat $g/cpu.max 2>&1)"
wait
check cgroup '[ "$limits" = "67108864 64 100000 100000" ] && [ -z "$(ls -d /sys/fs/cgroup/qubes-runtime/cg.* 2>/dev/null)" ]' "$limits; left: $(ls /sys/fs/cgroup/qubes-runtime)"

q cpu -- /bin/sh -c 'end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do :; done; sleep 3' > /dev/null & sleep 3.5
usage=$(grep '^usage_usec ' $(ls -d /sys/fs/cgroup/qubes-runtime/cpu.* | head -n1)/cpu.stat 2>&1)
wait
check cputime '[ "${usage#usage_usec }" -ge 500000 ] 2>/dev/null' "$usage"

out=$(q mem -- /bin/sh -c 'head -c 200000000 /dev/zero | tail > /dev/null; echo rc=$?')
check memory 'echo "$out" | grep -q "rc=137"' "$out"

out=$(q pids -- $A processes 200)
check pids 'echo "$out" | grep -q "REFUSED after [0-9]* processes" && [ "$(echo "$out" | sed -n "s/.*after \([0-9]*\).*/\1/p")" -le 64 ]' "$out"

out=$(q probes -- /bin/sh -c "mkdir -p /tmp/p; $A mount-tmpfs /tmp/p; $A userns; $A keyring; $A handle-open /etc; $A cgroup-agent /tmp/p; $A bpf; $A clock-set")
check refused '[ "$(echo "$out" | grep -c REFUSED)" = 7 ]' "$out"

out=$(q tpl --root-writable -- /bin/sh -c 'echo t > /usr/bin/zz-template && echo e > /etc/from-template && chown 1000 /usr/bin/zz-template && rm /usr/bin/yes && echo written')
own=$(stat -c '%u %g' /sandbox/layer/usr/bin/zz-template 2>&1)
check template 'echo "$out" | grep -q written && [ "$own" = "1000 0" ] && [ "$(stat -c %u /sandbox/layer/etc/from-template)" = 0 ] && [ -c /sandbox/layer/usr/bin/yes ]' "$out; on disk: $own"

out=$(q app -- /bin/sh -c 'cat /usr/bin/zz-template /etc/from-template; stat -c "%u %U" /usr/bin/zz-template /etc/passwd; ls /usr/bin/yes 2>&1; touch /usr/bin/x 2>&1')
check appvm 'echo "$out" | grep -q "^t$" && echo "$out" | grep -q "^1000 user$" && echo "$out" | grep -q "^0 root$" && echo "$out" | grep -q "No such file" && echo "$out" | grep -q "Read-only"' "$out"

q vol -- /bin/sh -c 'touch /home/mine && chown 1000:1000 /home/mine' > /dev/null
mkdir -p /tmp/raw && mount -o loop,ro /sandbox/private.img /tmp/raw && own=$(stat -c '%u %g' /tmp/raw/home/mine 2>&1); umount /tmp/raw
check volume '[ "$own" = "1000 1000" ]' "on disk: $own"

q plant -- /bin/sh -c 'rm -rf /rw/home && ln -s / /rw/home' > /dev/null
out=$(q after -- /bin/sh -c 'ls -A /home | wc -l')
check link '[ "$(echo "$out" | tail -n 1)" = 0 ] && grep -q "home is not a directory" /tmp/after.log' "$out"
for f in /tmp/*.log; do echo "SANDBOXTEST LOG $f: $(tr '\n' '|' < $f)"; done
echo "SANDBOXTEST DONE"
poweroff -f
CHECKS
chmod +x root/sandbox/checks
rm -f root.img && truncate -s 256M root.img
mkfs.ext4 -q -F -m 0 -d root root.img
cp root.img rd/root.img
(cd rd && find . | cpio -o -H newc 2>/dev/null | gzip -1) > rd.gz

log="$work/console.log"
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 -nographic -no-reboot \
    -kernel "kx/boot/vmlinuz-$kv" -initrd rd.gz -append "console=ttyS0 panic=-1 quiet" > "$log" 2>&1 || true
tr -d '\r' < "$log" | grep -E '^SANDBOXTEST' || true
passed=0; failed=0
for c in "${checks[@]}"; do
    if tr -d '\r' < "$log" | grep -q "^SANDBOXTEST PASS $c\$"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
if tr -d '\r' < "$log" | grep -q '^SANDBOXTEST FAIL'; then
    tr -d '\r' < "$log" | tail -n 40
fi
echo "sandbox-kernel run: $(( $(date +%s) - start )) s, $passed passed, $failed failed"
[ "$failed" -eq 0 ]
