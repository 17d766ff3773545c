"""``cryodesk.jobs.MODULES`` names the module of every built-in job type (a process loads only those it uses)."""

from __future__ import annotations

import json
import subprocess
import sys

# In a fresh interpreter: import every module of cryodesk.jobs and note which module registers which type.
_CODE = r"""
import importlib, json, sys
import cryodesk.jobs as jobs
from cryodesk.core import registry
found = {}
real = registry.register
def register(job_type):
    module = sys._getframe(1).f_globals["__name__"]
    if module.startswith("cryodesk.jobs."):
        found[job_type.name] = module.rsplit(".", 1)[1]
    return real(job_type)
registry.register = register
for name in jobs.module_names():
    importlib.import_module("cryodesk.jobs." + name)
print(json.dumps({"found": found, "index": jobs.MODULES}))
"""

_LAZY = r"""
import json, sys
import cryodesk.jobs
from cryodesk.core import registry
jt = registry.get("external")
after_get = sorted(m for m in sys.modules if m.startswith("cryodesk.jobs."))
names = [t.name for t in registry.all_types()]
print(json.dumps({"type": jt.name, "after_get": after_get, "all": names}))
"""


def _run(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_index_names_every_builtin_type_and_its_module():
    got = _run(_CODE)
    assert got["found"], "no job type registered at all"
    missing = {t: m for t, m in got["found"].items() if got["index"].get(t) != m}
    assert not missing, f"add these to cryodesk.jobs.MODULES (type: module): {missing}"
    stale = sorted(set(got["index"]) - set(got["found"]))
    assert not stale, f"cryodesk.jobs.MODULES names types no module registers: {stale}"


def test_a_type_is_loaded_when_asked_for_and_all_when_listed():
    got = _run(_LAZY)
    assert got["type"] == "external"
    assert got["after_get"] == ["cryodesk.jobs.external"]  # its module only
    assert {"external", "restack_particles", "import_particles", "cache_particles"} <= set(got["all"])
