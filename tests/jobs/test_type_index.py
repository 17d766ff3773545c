"""``cryodesk.jobs.MODULES`` names the module of every built-in job type (a process loads only those it uses)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# In a fresh interpreter: note which module registers which type, ask for one type (only its module
# loads), then list all types (every module loads).
_CODE = r"""
import json, sys
from cryodesk.core import registry
found = {}
real = registry.register
def register(job_type):
    module = sys._getframe(1).f_globals["__name__"]
    if module.startswith("cryodesk.jobs."):
        found[job_type.name] = module.rsplit(".", 1)[1]
    return real(job_type)
registry.register = register
import cryodesk.jobs as jobs
got = registry.get("external").name
after_get = sorted(m for m in sys.modules if m.startswith("cryodesk.jobs."))
listed = [t.name for t in registry.all_types()]
print(json.dumps({"got": got, "after_get": after_get, "listed": listed, "found": found, "index": jobs.MODULES}))
"""


@pytest.fixture(scope="module")
def fresh() -> dict:
    proc = subprocess.run([sys.executable, "-c", _CODE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_index_names_every_builtin_type_and_its_module(fresh):
    assert len(fresh["found"]) >= 10, fresh["found"]
    missing = {t: m for t, m in fresh["found"].items() if fresh["index"].get(t) != m}
    assert not missing, f"add these to cryodesk.jobs.MODULES (type: module): {missing}"
    stale = sorted(set(fresh["index"]) - set(fresh["found"]))
    assert not stale, f"cryodesk.jobs.MODULES names types no module registers: {stale}"


def test_a_type_loads_its_module_only_and_listing_loads_all(fresh):
    assert fresh["got"] == "external"
    assert fresh["after_get"] == ["cryodesk.jobs.external"]
    assert set(fresh["listed"]) == set(fresh["found"])  # every module's types, nothing else
