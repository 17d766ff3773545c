"""Derive the ``Depends:`` line of the .deb from the ELF files in the bundle.

Run as ``python packaging/deb_depends.py BUNDLE_DIR [--explain]``.

How (every step is a pure function below, tested on a fixture in
tests/packaging/test_deb_depends.py):

1. Every ELF file in the bundle is read with ``objdump -p``: its ``NEEDED``
   sonames and the ``GLIBC_x.y`` symbol versions it requires.
2. A soname satisfied inside the bundle (a bundled file or a bundled SONAME)
   needs nothing from the system.  The rest are found the way the dynamic
   loader finds them: the ``ldconfig -p`` cache first, then the standard
   library directories by file name (numba's OpenMP pool asks for
   ``libgomp.so.1.0.0``, a file name, not a soname).
3. Each library path is mapped to its Debian package with ``dpkg -S``, trying
   the merged-/usr twin of the path too (dpkg records ``/lib/...`` for some
   packages and ``/usr/lib/...`` for others).
4. ``libc6`` gets a lower bound from the newest ``GLIBC_`` version needed.
5. Libraries that are ``dlopen()``ed, so invisible in ``NEEDED``, and data
   packages (a font) are added from :data:`EXTRA` with the reason.

A soname found nowhere fails the build, unless it is listed in
:data:`OPTIONAL` with the reason it may be missing at run time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

#: Packages a bundle needs that no NEEDED entry shows, with the reason.
EXTRA: dict[str, str] = {
    "fonts-dejavu-core": "Qt finds fonts through fontconfig; with no font installed every label "
                         "is blank (a minimal Debian root has none)",
}

#: Sonames that may be absent at run time, with the reason.
OPTIONAL: dict[str, str] = {
    "libtbb.so.12": "numba's TBB threading layer (tbbpool); numba falls back to OpenMP (libgomp1)",
}

#: Where the loader looks when a NEEDED name is not in the ldconfig cache.
LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
            "/lib", "/usr/lib")

_NEEDED = re.compile(r"^\s*NEEDED\s+(\S+)", re.MULTILINE)
_SONAME = re.compile(r"^\s*SONAME\s+(\S+)", re.MULTILINE)
_GLIBC = re.compile(r"\bGLIBC_(\d+)\.(\d+)(?:\.(\d+))?\b")
_LDCONFIG = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$")


@dataclass
class ElfInfo:
    """What one ELF file asks of the dynamic loader."""

    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    glibc: tuple[int, ...] = ()


@dataclass
class Derivation:
    """The result: packages with the sonames (or reasons) that put them there."""

    packages: dict[str, set[str]]
    unresolved: dict[str, list[str]]
    optional_missing: dict[str, list[str]]
    libc_min: tuple[int, ...] = ()

    def depends(self) -> str:
        """The ``Depends:`` value: sorted, ``libc6`` with its lower bound."""
        items = []
        for pkg in sorted(self.packages):
            if pkg == "libc6" and self.libc_min:
                items.append(f"libc6 (>= {'.'.join(map(str, self.libc_min))})")
            else:
                items.append(pkg)
        return ", ".join(items)


def parse_objdump(text: str) -> ElfInfo:
    """Parse ``objdump -p`` output: NEEDED, SONAME and the newest GLIBC version."""
    soname = _SONAME.search(text)
    versions = [tuple(int(x) for x in m.groups() if x is not None) for m in _GLIBC.finditer(text)]
    return ElfInfo(needed=_NEEDED.findall(text), soname=soname.group(1) if soname else None,
                   glibc=max(versions, default=()))


def parse_ldconfig(text: str, arch: str = "x86-64") -> dict[str, str]:
    """Soname -> path for one architecture, from ``ldconfig -p`` output (first entry wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _LDCONFIG.match(line)
        if m and arch in m.group(2):
            out.setdefault(m.group(1), m.group(3))
    return out


def parse_dpkg_search(text: str) -> dict[str, str]:
    """Path -> package from ``dpkg -S`` output (``pkg:arch: /path``; diversions skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("diversion by") or ": " not in line:
            continue
        pkgs, path = line.split(": ", 1)
        pkg = pkgs.split(",")[0].strip().split(":")[0]
        out.setdefault(path.strip(), pkg)
    return out


def usr_merge_twins(path: str) -> list[str]:
    """``path`` and its merged-/usr alias (``/lib/x`` <-> ``/usr/lib/x``)."""
    twins = [path]
    for a, b in (("/usr/lib/", "/lib/"), ("/lib/", "/usr/lib/"), ("/usr/lib64/", "/lib64/"),
                 ("/lib64/", "/usr/lib64/")):
        if path.startswith(a):
            twins.append(b + path[len(a):])
            break
    return twins


def derive(elves: dict[str, ElfInfo], resolve: Callable[[str], str | None],
           owner: Callable[[str], str | None], extra: dict[str, str] | None = None,
           optional: dict[str, str] | None = None) -> Derivation:
    """Map the bundle's external NEEDED sonames to Debian packages.

    Parameters
    ----------
    elves : dict
        Bundle-relative file name -> :class:`ElfInfo`.
    resolve : callable
        Soname -> library path on this system, or None.
    owner : callable
        Library path -> Debian package, or None.
    extra, optional : dict
        Default :data:`EXTRA` / :data:`OPTIONAL`.
    """
    extra = EXTRA if extra is None else extra
    optional = OPTIONAL if optional is None else optional
    provided = {Path(name).name for name in elves} | {e.soname for e in elves.values() if e.soname}
    users: dict[str, list[str]] = {}
    for name, info in sorted(elves.items()):
        for so in info.needed:
            if so not in provided:
                users.setdefault(so, []).append(name)
    packages: dict[str, set[str]] = {}
    unresolved: dict[str, list[str]] = {}
    optional_missing: dict[str, list[str]] = {}
    for so, who in sorted(users.items()):
        path = resolve(so)
        pkg = owner(path) if path else None
        if pkg:
            packages.setdefault(pkg, set()).add(so)
        elif so in optional:
            optional_missing[so] = who
        else:
            unresolved[so] = who
    for pkg, why in extra.items():
        packages.setdefault(pkg, set()).add(f"({why})")
    libc_min = max((e.glibc for e in elves.values()), default=())
    return Derivation(packages, unresolved, optional_missing, libc_min if "libc6" in packages else ())


# --- the system side: objdump, ldconfig, dpkg ---------------------------------------------

def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def scan_bundle(root: Path) -> dict[str, ElfInfo]:
    """``objdump -p`` of every ELF file under ``root`` (symlinks not followed)."""
    elves = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and is_elf(p):
            text = subprocess.run(["objdump", "-p", str(p)], capture_output=True, text=True,
                                  check=True).stdout
            elves[str(p.relative_to(root))] = parse_objdump(text)
    return elves


def system_resolver() -> Callable[[str], str | None]:
    cache = parse_ldconfig(subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout)

    def resolve(so: str) -> str | None:
        if so in cache:
            return cache[so]
        for d in LIB_DIRS:
            if os.path.exists(os.path.join(d, so)):
                return os.path.join(d, so)
        return None

    return resolve


def dpkg_owners(paths: Iterable[str]) -> dict[str, str]:
    """Path -> package for each path that dpkg knows (realpath and merged-/usr twins tried)."""
    candidates: dict[str, str] = {}
    for path in paths:
        for variant in dict.fromkeys([path, os.path.realpath(path)]):
            for twin in usr_merge_twins(variant):
                candidates.setdefault(twin, path)
    if not candidates:
        return {}
    proc = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True)
    found = parse_dpkg_search(proc.stdout)
    out: dict[str, str] = {}
    for twin, pkg in found.items():
        if twin in candidates:
            out.setdefault(candidates[twin], pkg)
    return out


def system_owner() -> Callable[[str], str | None]:
    memo: dict[str, str | None] = {}

    def owner(path: str) -> str | None:
        if path not in memo:
            memo[path] = dpkg_owners([path]).get(path)
        return memo[path]

    return owner


def is_debian_system_library(src: str, owners: dict[str, str]) -> bool:
    """True for a library under a system lib directory that a Debian package owns."""
    real = os.path.realpath(src)
    in_system = any(real.startswith(d + "/") or src.startswith(d + "/") for d in LIB_DIRS)
    return in_system and src in owners


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--explain", action="store_true", help="print which soname brings each package")
    args = ap.parse_args(argv)
    d = derive(scan_bundle(args.bundle), system_resolver(), system_owner())
    if args.explain:
        for pkg in sorted(d.packages):
            print(f"  {pkg:24s} {', '.join(sorted(d.packages[pkg]))}", file=sys.stderr)
        for so, who in d.optional_missing.items():
            print(f"  (optional) {so} <- {who[0]}: {OPTIONAL[so]}", file=sys.stderr)
    if d.unresolved:
        for so, who in d.unresolved.items():
            print(f"deb_depends: {so} (needed by {', '.join(who[:3])}) is in no Debian package",
                  file=sys.stderr)
        return 1
    print(d.depends())
    return 0


if __name__ == "__main__":
    sys.exit(main())
