#!/usr/bin/env bash
# Build dist/cryodesk_<version>_amd64.deb for lab workstations (Debian 12):
#   a PyInstaller onedir bundle in /opt/cryodesk, /usr/bin/cryodesk, a .desktop entry,
#   hicolor icons, and a Depends line derived from the bundle (packaging/deb_depends.py).
# Needs: python3 (3.11, built with --enable-shared), the package registries (first run only),
# root or sudo for apt-get when a build tool or runtime library is missing.
# Environment: PYTHON (default python3), PKG_VENV (default build/pkg-venv),
#              DEB_COMPRESS (dpkg-deb -Z: zstd (default; fast, needs dpkg >= 1.21.18 as in Debian 12),
#              xz (~30% smaller, ~5 min longer), gzip, none).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
VENV=${PKG_VENV:-build/pkg-venv}
COMPRESS=${DEB_COMPRESS:-zstd}
# Packaging-only pins (not runtime dependencies of cryodesk).
PYINSTALLER_REQ='pyinstaller>=6.10,<7'
VERSION=$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' cryodesk/__init__.py)
ARCH=amd64
BUNDLE=build/pyinstaller/dist/cryodesk
STAGE=build/deb/root
DEB=dist/cryodesk_${VERSION}_${ARCH}.deb
T0=$(date +%s)

step() { printf '[build_deb +%3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- 1. build tools, and the run-time libraries Depends is derived from ---------------------
# deb_depends.py maps each library the bundle links to onto the Debian package that ships it,
# so those libraries must be installed here.  The Wayland client libraries are the only ones a
# stock Debian 12 build machine with the Makefile's packages may lack.
NEED_DEBS="binutils libwayland-client0 libwayland-cursor0 libwayland-egl1 libgomp1 \
libgl1 libegl1 libfontconfig1 fonts-dejavu-core libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0 \
libxcb-image0 libxcb-xkb1 libx11-xcb1"
missing=""
for p in $NEED_DEBS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    step "installing Debian packages:$missing"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $missing >/dev/null
fi

# --- 2. a build venv with only the runtime dependencies + PyInstaller ------------------------
# Separate from the developer .venv so test tools never end up in the bundle.
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -c 'import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var("Py_ENABLE_SHARED") else
        "PyInstaller needs a Python built with --enable-shared (libpython3.x.so)")'
    step "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
    step "installing cryodesk's runtime dependencies and $PYINSTALLER_REQ into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e . "$PYINSTALLER_REQ"
    touch "$VENV/.installed"
fi

# --- 3. the bundle ---------------------------------------------------------------------------
step "PyInstaller $("$VENV/bin/pyinstaller" --version) -> $BUNDLE"
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath build/pyinstaller/dist --workpath build/pyinstaller/work packaging/cryodesk.spec
got=$("$BUNDLE/cryodesk" --version)
[ "$got" = "cryodesk $VERSION" ] || { echo "bundle says '$got', expected 'cryodesk $VERSION'" >&2; exit 1; }

# The bundle must have every numba kernel the build venv has (a native piece PyInstaller missed
# turns a kernel into its numpy fallback silently): compare the self-test's kernel lines.
kernels() {
    local out
    out=$(QT_QPA_PLATFORM=offscreen "$1" self-test 2>&1) || { echo "$1 self-test failed:" >&2; echo "$out" >&2; return 1; }
    echo "$out" | awk '$1 == "ok" && $2 ~ /^kernels\./ {print $2, $4}'
}
want=$(kernels "$VENV/bin/cryodesk"); got=$(kernels "$BUNDLE/cryodesk")
if [ "$want" != "$got" ]; then
    echo "the bundle's kernels differ from the build venv's:" >&2
    diff <(echo "$want") <(echo "$got") >&2 || true
    exit 1
fi
step "bundle kernels match the build venv: $(echo "$got" | tr '\n' ' ')"

# --- 4. Depends, derived from the bundle ------------------------------------------------------
step "deriving Depends from the bundle's ELF files"
DEPENDS=$("$VENV/bin/python" packaging/deb_depends.py "$BUNDLE" --explain)
echo "Depends: $DEPENDS"

# --- 5. the package tree ------------------------------------------------------------------------
step "staging $STAGE"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/doc/cryodesk" "$STAGE/usr/share/icons/hicolor/scalable/apps"
cp -a "$BUNDLE" "$STAGE/opt/cryodesk"
# A wrapper, not a symlink: the bootloader finds _internal/ next to the real executable.
cat > "$STAGE/usr/bin/cryodesk" <<'EOF'
#!/bin/sh
exec /opt/cryodesk/cryodesk "$@"
EOF
chmod 755 "$STAGE/usr/bin/cryodesk"
install -m 644 resources/cryodesk.desktop "$STAGE/usr/share/applications/cryodesk.desktop"
install -m 644 resources/cryodesk.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/cryodesk.svg"
for png in resources/icons/hicolor/*/apps/cryodesk.png; do
    size=$(basename "$(dirname "$(dirname "$png")")")
    install -D -m 644 "$png" "$STAGE/usr/share/icons/hicolor/$size/apps/cryodesk.png"
done
cat > "$STAGE/usr/share/doc/cryodesk/copyright" <<EOF
cryodesk $VERSION — proprietary; bundles Python, Qt for Python (LGPLv3), numpy, numba,
llvmlite, pyqtgraph, peewee, mrcfile, platformdirs under their own licenses
(see /opt/cryodesk/_internal/*.dist-info).
EOF
chmod -R u+rwX,go+rX,go-w "$STAGE"
INSTALLED_KB=$(du -sk --apparent-size --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<EOF
Package: cryodesk
Version: $VERSION
Architecture: $ARCH
Maintainer: cryodesk team <cryodesk@localhost>
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS
Section: science
Priority: optional
Homepage: https://localhost/cryodesk
Description: cryo-EM processing-project data management
 See the job tree of CryoSPARC/RELION-style projects with their final results,
 clean up what is safe to delete (with a preview first), restack particles and
 cache them on SSD.  Self-contained: ships its own Python, Qt and numba
 in /opt/cryodesk; run "cryodesk self-test" to check an installation.
EOF
# Menus and icon caches are refreshed by the desktop-file-utils / hicolor dpkg triggers.

# --- 6. the .deb ----------------------------------------------------------------------------------
step "dpkg-deb -Z$COMPRESS -> $DEB"
mkdir -p dist
rm -f "$DEB"
dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$STAGE" "$DEB" >/dev/null
step "done: $DEB"
printf 'bundle size:  %s\n' "$(du -sh "$BUNDLE" | cut -f1)"
printf '.deb size:    %s\n' "$(du -h "$DEB" | cut -f1)"
printf 'build time:   %ss\n' "$(( $(date +%s) - T0 ))"
