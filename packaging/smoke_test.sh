#!/usr/bin/env bash
# Smoke test of the .deb on a fresh, minimal Debian 12: build it, debootstrap a root,
# `apt-get install ./cryodesk_<v>_amd64.deb` there, run `cryodesk self-test --screenshot`
# as an ordinary user with no display (QT_QPA_PLATFORM=offscreen), twice (the second run
# must load the numba kernels from the per-user cache, from another working directory),
# then purge the package and check nothing is left in /opt.
# Needs root (debootstrap, chroot, mount) and Debian's package mirror.
# Usage: packaging/smoke_test.sh [SCREENSHOT.png]    (default build/smoke/selftest.png)
# Environment: SKIP_BUILD=1 reuses dist/*.deb; SMOKE_MIRROR overrides the mirror;
#              SMOKE_X11=0 skips the extra run under Xvfb (real X11 platform plugin).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "smoke_test.sh must run as root (debootstrap, chroot)" >&2; exit 2; }
VERSION=$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' cryodesk/__init__.py)
DEB=dist/cryodesk_${VERSION}_amd64.deb
WORK=build/smoke
SHOT=$(realpath -m "${1:-$WORK/selftest.png}")
SUITE=bookworm
BASE_TAR=$WORK/base-$SUITE.tar       # the debootstrapped root, kept for the next run
CHROOT=$WORK/root
T0=$(date +%s)
step() { printf '[smoke +%3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

# The Debian mirror this machine's apt already uses (deb822 .sources or one-line .list).
mirror() {
    [ -n "${SMOKE_MIRROR:-}" ] && { echo "$SMOKE_MIRROR"; return; }
    local uri
    uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && /(^| )'"$SUITE"'( |$)/ {print u; exit}' \
          /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -z "$uri" ] && uri=$(awk '$1=="deb" && $3=="'"$SUITE"'" {print $2; exit}' \
          /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    echo "${uri:-http://deb.debian.org/debian}"
}

mounted=()
cleanup() {
    local i
    for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
mount_all() {
    mount -t proc proc "$CHROOT/proc" && mounted+=("$CHROOT/proc")
    mount --bind /dev "$CHROOT/dev" && mounted+=("$CHROOT/dev")
    mount -t devpts devpts "$CHROOT/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null \
        && mounted+=("$CHROOT/dev/pts") || true
}
in_root() { chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# --- 1. the package ------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ] || [ ! -f "$DEB" ]; then
    step "building $DEB"
    bash packaging/build_deb.sh
fi

# --- 2. a minimal Debian 12 root -----------------------------------------------------------------
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
MIRROR=$(mirror)
rm -rf "$CHROOT"; mkdir -p "$CHROOT"
if [ -f "$BASE_TAR" ]; then
    step "reusing the minimal $SUITE root ($BASE_TAR)"
    tar -xf "$BASE_TAR" -C "$CHROOT"
else
    step "debootstrap --variant=minbase $SUITE from $MIRROR"
    t=$(date +%s)
    debootstrap --variant=minbase "$SUITE" "$CHROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    step "debootstrap took $(( $(date +%s) - t ))s"
    tar -cf "$BASE_TAR" -C "$CHROOT" .
fi
mount_all
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
in_root useradd -m -s /bin/sh lab

# --- 3. install, as a facility admin would -------------------------------------------------------
cp "$DEB" "$CHROOT/tmp/"
step "apt-get install ./$(basename "$DEB")"
t=$(date +%s)
in_root apt-get update -qq
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "./tmp/$(basename "$DEB")" > "$WORK/install.log" 2>&1 \
    || { (cd "$CHROOT" && tail -30 "$ROOT/$WORK/install.log") >&2; exit 1; }
INSTALL_S=$(( $(date +%s) - t ))
step "installed in ${INSTALL_S}s ($(in_root dpkg-query -W -f='${Installed-Size}' cryodesk) KiB)"
test -x "$CHROOT/usr/bin/cryodesk"
test -f "$CHROOT/usr/share/applications/cryodesk.desktop"
test -f "$CHROOT/usr/share/icons/hicolor/48x48/apps/cryodesk.png"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$CHROOT/usr/share/applications/cryodesk.desktop"
fi

# The offscreen self-test loads no xcb/Wayland library: check with ldd that every library of
# every bundled plugin resolves here, from the Depends line alone (libtbb: optional, see
# packaging/deb_depends.py OPTIONAL).
in_root sh -c 'find /opt/cryodesk -type f -name "*.so*" -print0 | xargs -0 -n 64 ldd 2>/dev/null' \
    | awk '/not found/ {print $1}' | sort -u > "$WORK/ldd-not-found.txt"
find "$CHROOT/opt/cryodesk" -name '*.so*' -printf '%f\n' | sort -u > "$WORK/bundled-names.txt"
unresolved=$(comm -23 "$WORK/ldd-not-found.txt" "$WORK/bundled-names.txt" | grep -v '^libtbb\.so' || true)
if [ -n "$unresolved" ]; then
    echo "smoke: libraries the bundle needs but the Depends line does not bring:" >&2
    echo "$unresolved" >&2
    exit 1
fi
step "ldd: every bundled library resolves ($(wc -l < "$WORK/bundled-names.txt") files checked)"

# --- 4. self-test as an ordinary user, no display ------------------------------------------------
as_lab() {
    chroot --userspec=lab:lab "$CHROOT" /usr/bin/env -i HOME=/home/lab USER=lab LANG=C.UTF-8 \
        PATH=/usr/bin:/bin QT_QPA_PLATFORM=offscreen /bin/sh -c "$1"
}
step "cryodesk --version: $(as_lab 'cryodesk --version')"
step "cryodesk self-test --screenshot (first run: kernels compile)"
t=$(date +%s)
as_lab 'cd /home/lab && cryodesk self-test --screenshot /home/lab/selftest.png'
FIRST_S=$(( $(date +%s) - t ))
step "second run from /tmp (kernels must come from ~/.cache/cryodesk)"
t=$(date +%s)
out=$(as_lab 'cd /tmp && cryodesk self-test')
echo "$out"
SECOND_S=$(( $(date +%s) - t ))
if echo "$out" | grep -q "kernel(s) compiled"; then
    echo "smoke: the second run recompiled kernels: the numba cache is not reused" >&2
    exit 1
fi
mkdir -p "$(dirname "$SHOT")"
cp "$CHROOT/home/lab/selftest.png" "$SHOT"
ls -d "$CHROOT"/home/lab/.cache/cryodesk/*/numba >/dev/null

# --- 4b. the real X11 platform plugin (xcb), under Xvfb (SMOKE_X11=0 skips) ---------------------
if [ "${SMOKE_X11:-1}" = 1 ]; then
    step "self-test on a real X server (Xvfb, platform xcb)"
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        xvfb xauth > "$WORK/xvfb-install.log" 2>&1
    out=$(chroot --userspec=lab:lab "$CHROOT" /usr/bin/env -i HOME=/home/lab USER=lab LANG=C.UTF-8 \
        PATH=/usr/bin:/bin xvfb-run -a -s "-screen 0 1400x1000x24" \
        cryodesk self-test --screenshot /home/lab/selftest-x11.png 2>&1) || { echo "$out" >&2; exit 1; }
    echo "$out" | grep -E "qt platform|main window|self-test"
    echo "$out" | grep -q "platform 'xcb'" || { echo "smoke: Qt did not use xcb under Xvfb" >&2; exit 1; }
    cp "$CHROOT/home/lab/selftest-x11.png" "${SHOT%.png}-x11.png"
fi

# --- 5. uninstall leaves nothing behind ----------------------------------------------------------
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq cryodesk >/dev/null
if [ -e "$CHROOT/opt/cryodesk" ]; then
    echo "smoke: /opt/cryodesk left after purge:" >&2; find "$CHROOT/opt/cryodesk" | head >&2; exit 1
fi

cleanup; mounted=()
rm -rf "$CHROOT"
printf '\nsmoke test passed\n'
printf 'bundle size:        %s\n' "$(du -sh build/pyinstaller/dist/cryodesk | cut -f1)"
printf '.deb size:          %s\n' "$(du -h "$DEB" | cut -f1)"
printf 'install time:       %ss (apt-get install ./deb, incl. downloading its Depends)\n' "$INSTALL_S"
printf 'self-test:          %ss first run, %ss second run\n' "$FIRST_S" "$SECOND_S"
printf 'screenshots:        %s (offscreen), %s (Xvfb)\n' "$SHOT" "${SHOT%.png}-x11.png"
printf 'smoke test total:   %ss\n' "$(( $(date +%s) - T0 ))"
