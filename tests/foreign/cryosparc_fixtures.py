"""Build CryoSPARC project directories for tests from the real v4 job documents and the v5 field list."""

from __future__ import annotations

import copy
import json
from pathlib import Path


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\1" * size)


def build(root: Path, docs: Path) -> Path:
    """P1 with J1 (v4 homo_abinit, its metafiles on disk), J2 (v4 external), J3 (a v5 document), S1."""
    root.mkdir(parents=True)
    (root / "project.json").write_text(json.dumps({"uid": "P1", "title": "beta-gal", "project_dir": str(root)}))
    (root / "workspaces.json").write_text(json.dumps([{"uid": "W1", "title": "Main"}, {"uid": "W2", "title": "B"}]))
    j1 = json.loads((docs / "v4_J1_homo_abinit.json").read_text())
    j1.update(status="completed", workspace_uids=["W1"], created_at={"$date": "2023-05-01T10:00:00.000Z"})
    j2 = json.loads((docs / "v4_J2_external.json").read_text())
    j2 = copy.deepcopy(j2)
    j2["input_slot_groups"] = [{"name": "particles", "connections": [{"job_uid": "J1",
                                                                         "group_name": "particles_class_0"}]}]
    j2["status"] = "killed"
    j3 = {"uid": "J3", "project_uid": "P1", "status": "completed", "workspace_uids": ["W2"], "title": "refine",
          "spec": {"type": "nonuniform_refine_new", "params": {"refine_symmetry": "D2"},
                   "inputs": {"particles": {"type": "particle", "title": "Particles", "connections": [
                       {"job_uid": "J1", "output": "particles_class_0", "results": []}]}},
                   "outputs": {"volume": {"type": "volume", "title": "Volume", "results": [
                       {"name": "map", "dtype": "volume", "versions": [0, 1],
                        "metafiles": ["J3/J3_000_volume.cs", "J3/J3_001_volume.cs"], "num_items": [1, 1]}]}}},
          "is_final_result": True, "is_ancestor_of_final_result": False, "job_dir_size": 1,
          "intermediate_results_size_bytes": 5, "brand_new_v6_field": {"x": 1}}
    j1["is_ancestor_of_final_result"] = True
    for n, doc in ((1, j1), (2, j2), (3, j3)):
        (root / f"J{n}").mkdir()
        (root / f"J{n}" / "job.json").write_text(json.dumps(doc))
        (root / f"J{n}" / "job.log").write_text("log\n")
    for r in j1["output_results"]:
        for f in r["metafiles"]:
            if not (root / f).exists():
                _write(root / f, 1000)
    for f in j3["spec"]["outputs"]["volume"]["results"][0]["metafiles"]:
        _write(root / f, 700)
    _write(root / "S1" / "exposures" / "e1.mrc", 300)
    return root
