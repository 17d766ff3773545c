"""The Depends derivation of packaging/deb_depends.py, on recorded objdump output and fake system maps."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"


def _load():
    spec = importlib.util.spec_from_file_location("deb_depends", ROOT / "packaging" / "deb_depends.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("deb_depends", mod)
    spec.loader.exec_module(mod)
    return mod


dd = _load()

LDCONFIG = """\
542 libs found in cache `/etc/ld.so.cache'
	libdbus-1.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libdbus-1.so.3
	libdbus-1.so.3 (libc6) => /lib/i386-linux-gnu/libdbus-1.so.3
	libc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
	libstdc++.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libstdc++.so.6
"""
DPKG_S = """\
diversion by dash from: /bin/sh
libdbus-1-3:amd64: /lib/x86_64-linux-gnu/libdbus-1.so.3
libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6
libstdc++6:amd64, libstdc++6:i386: /lib/x86_64-linux-gnu/libstdc++.so.6
"""


def test_parse_recorded_objdump_output():
    omp = dd.parse_objdump((DATA / "objdump_omppool.txt").read_text())
    assert "libgomp.so.1.0.0" in omp.needed  # a file name, not the soname libgomp.so.1
    assert omp.soname is None and omp.glibc == (2, 14)
    dbus = dd.parse_objdump((DATA / "objdump_libQt6DBus.txt").read_text())
    assert dbus.soname == "libQt6DBus.so.6"
    assert {"libdbus-1.so.3", "libQt6Core.so.6", "libc.so.6"} <= set(dbus.needed)


def test_parse_ldconfig_keeps_the_requested_architecture():
    cache = dd.parse_ldconfig(LDCONFIG)
    assert cache["libdbus-1.so.3"] == "/lib/x86_64-linux-gnu/libdbus-1.so.3"
    assert cache["libc.so.6"] == "/lib/x86_64-linux-gnu/libc.so.6"


def test_parse_dpkg_search_skips_diversions_and_strips_arch():
    owners = dd.parse_dpkg_search(DPKG_S)
    assert owners["/lib/x86_64-linux-gnu/libstdc++.so.6"] == "libstdc++6"
    assert owners["/lib/x86_64-linux-gnu/libdbus-1.so.3"] == "libdbus-1-3"
    assert "/bin/sh" not in owners


def test_usr_merge_twins():
    assert dd.usr_merge_twins("/usr/lib/x86_64-linux-gnu/libc.so.6") == [
        "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"]
    assert dd.usr_merge_twins("/opt/x.so") == ["/opt/x.so"]


def test_derive_maps_external_sonames_and_keeps_bundled_ones_out():
    elves = {
        "_internal/numba/np/ufunc/omppool.so": dd.parse_objdump((DATA / "objdump_omppool.txt").read_text()),
        "_internal/PySide6/Qt/lib/libQt6DBus.so.6": dd.parse_objdump(
            (DATA / "objdump_libQt6DBus.txt").read_text()),
        # libQt6Core.so.6 is bundled: it must not be looked up on the system
        "_internal/PySide6/Qt/lib/libQt6Core.so.6": dd.ElfInfo(["libc.so.6"], "libQt6Core.so.6", (2, 34)),
        "_internal/numba/np/ufunc/tbbpool.so": dd.ElfInfo(["libtbb.so.12", "libc.so.6"]),
        "_internal/weird.so": dd.ElfInfo(["libnowhere.so.9"]),
    }
    system = {
        "libc.so.6": ("/lib/x86_64-linux-gnu/libc.so.6", "libc6"),
        "libm.so.6": ("/lib/x86_64-linux-gnu/libm.so.6", "libc6"),
        "libdl.so.2": ("/lib/x86_64-linux-gnu/libdl.so.2", "libc6"),
        "libpthread.so.0": ("/lib/x86_64-linux-gnu/libpthread.so.0", "libc6"),
        "ld-linux-x86-64.so.2": ("/lib64/ld-linux-x86-64.so.2", "libc6"),
        "libgomp.so.1.0.0": ("/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0", "libgomp1"),
        "libstdc++.so.6": ("/lib/x86_64-linux-gnu/libstdc++.so.6", "libstdc++6"),
        "libgcc_s.so.1": ("/lib/x86_64-linux-gnu/libgcc_s.so.1", "libgcc-s1"),
        "libdbus-1.so.3": ("/lib/x86_64-linux-gnu/libdbus-1.so.3", "libdbus-1-3"),
    }
    owners = {path: pkg for path, pkg in system.values()}
    d = dd.derive(elves, lambda so: system.get(so, (None,))[0], owners.get,
                  extra={"fonts-dejavu-core": "a font"}, optional={"libtbb.so.12": "optional layer"})
    assert d.depends() == ("fonts-dejavu-core, libc6 (>= 2.34), libdbus-1-3, libgcc-s1, libgomp1, "
                           "libstdc++6")
    assert d.unresolved == {"libnowhere.so.9": ["_internal/weird.so"]}
    assert list(d.optional_missing) == ["libtbb.so.12"]
    assert "libQt6Core.so.6" not in {so for sos in d.packages.values() for so in sos}
    assert d.packages["libgomp1"] == {"libgomp.so.1.0.0"}


@pytest.mark.skipif(not (shutil.which("objdump") and shutil.which("dpkg") and shutil.which("ldconfig")),
                    reason="needs objdump, dpkg and ldconfig (Debian)")
def test_derive_on_a_real_elf_file(tmp_path):
    exe = Path(shutil.which("dpkg")).resolve()
    shutil.copy(exe, tmp_path / exe.name)
    d = dd.derive(dd.scan_bundle(tmp_path), dd.system_resolver(), dd.system_owner(), extra={})
    assert not d.unresolved
    assert d.depends().startswith("libc6 (>= 2.")
    proc = subprocess.run([sys.executable, str(ROOT / "packaging" / "deb_depends.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "fonts-dejavu-core" in proc.stdout, proc.stderr
