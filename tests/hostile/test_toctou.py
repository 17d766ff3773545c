"""A symlink swapped in while an item's paths are being moved (check-then-rename race).

``move_to_trash`` gets the item's paths checked all at once
(``checked_paths``: each parent resolved, inside the job directory) and then
renames them one by one with plain ``os.rename(path, dest)``, which follows
every symlink among the parents.  Whoever can write into the project swaps a
job's subdirectory (or the job directory) for a symlink after the first
rename: the next rename moves a file from wherever the link points into the
trash, and the emptier deletes it; an item that fails afterwards "puts back"
its files through the link, i.e. writes them outside the project.  Renames
relative to directory file descriptors opened with O_NOFOLLOW (``os.rename(name,
dest, src_dir_fd=fd)``, fd from ``os.open(parent, O_DIRECTORY|O_NOFOLLOW)``
walked down from the job directory) close the window.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryodesk.core import actions, jobs, runner
from cryodesk.core.cleanup import delete_intermediate_now, set_project_setting
from cryodesk.db.models import Job


def _swap_after_first_rename(monkeypatch, first_suffix: str, victim: Path, target: Path) -> list:
    """Patch os.rename: right after the rename of ``*first_suffix``, replace ``victim`` by a link to ``target``."""
    real_rename, swapped = os.rename, []

    def rename(src, dst, *args, **kwargs):
        real_rename(src, dst, *args, **kwargs)
        # (renames may be relative to a directory descriptor: compare the last component)
        if not swapped and str(src).rsplit("/", 1)[-1] == first_suffix.lstrip("/"):  # strike between two renames
            swapped.append(True)
            real_rename(victim, victim.with_name(victim.name + ".moved_aside"))
            victim.symlink_to(target, target_is_directory=True)

    monkeypatch.setattr(os, "rename", rename)
    return swapped


def test_subdir_swapped_for_a_symlink_mid_move_deletes_nothing_outside(project, tmp_path, monkeypatch):
    set_project_setting(project, "delete_intermediate", False)
    j = jobs.create_job(project, "h_nested_iter", "W1", params={"iterations": 3})
    runner.run_job(project, j)
    sub = Path(project.directory) / j.directory / "sub"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "iter_001.bin").write_bytes(b"someone else's file")

    swapped = _swap_after_first_rename(monkeypatch, "/iter_000.bin", sub, outside)
    result = delete_intermediate_now(project, Job.get_by_id(j.id))  # versions 0 and 1 of sub/iter_*.bin
    monkeypatch.undo()
    assert swapped and result["versions"] == {"classes": [0, 1]}
    assert (outside / "iter_001.bin").read_bytes() == b"someone else's file", result


def test_job_dir_swapped_for_a_symlink_mid_move_writes_nothing_outside(project, tmp_path, monkeypatch):
    j = jobs.create_job(project, "h_source", "W1")
    jdir = Path(project.directory) / j.directory
    (jdir / "a.bin").write_bytes(b"a" * 10)
    (jdir / "b.bin").write_bytes(b"b" * 10)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.bin").write_bytes(b"someone else's file")
    plan = actions.plan_clear(project, [Job.get_by_id(j.id)])
    assert [i.paths for i in plan.plan.items] == [[f"{j.uid}/a.bin", f"{j.uid}/b.bin"]]

    swapped = _swap_after_first_rename(monkeypatch, "/a.bin", jdir, outside)
    actions.run_plan(project, plan)
    monkeypatch.undo()
    assert swapped
    assert (outside / "b.bin").read_bytes() == b"someone else's file"
    # the failed item "put back" a.bin through the link: into a directory that is not the project's
    assert sorted(os.listdir(outside)) == ["b.bin"]
