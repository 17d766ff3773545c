"""The demo project a new user gets: a realistic job tree on simulated data.

:func:`create_demo_project` simulates a dataset (:mod:`cryodesk.demo.simulate`),
creates a project with two workspaces and runs the built-in pipeline through
the same services as the app (``core.jobs`` + ``core.runner``):

* **W1 "Main line"**: import movies → motion → CTF → blob picker → extract →
  2D classes (its per-iteration intermediate results kept) → select 2D →
  restack, the restack marked **final** (so J1–J7 become ancestors of final).
* **W2 "Exploration"**: the extraction and 2D classes linked from W1, a second
  picker + extraction with other parameters (non-final preprocessing), a 2D
  classification that was **killed** half-way (its finished iterations kept:
  "Mark as complete" makes the last one its output), the guide's
  *consolidation* of the selected particles (Downsample Particles run with no
  parameter changed: the box kept, only the subset written) and a Select 2D
  that **failed** on a class that does not exist.

Everything a Cleanup Data demo needs.  Deterministic for a given seed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from ..base.errors import CryodeskError, UsageError
from ..core import actions, finals, jobs, projects, runner
from .simulate import load_truth, simulate_dataset

Progress = Callable[[float, str], None]


def default_demo_dir(db_url: str | None = None) -> Path:
    """Where ``cryodesk demo`` and the app's first start build the demo: beside the database.

    For an SQLite database ``DIR/NAME.sqlite`` that is ``DIR/NAME-demo`` (the
    default database gives ``~/.local/share/cryodesk/cryodesk-demo``), so a
    database chosen with ``CRYODESK_DB``/``--db`` keeps its demo with it; a
    PostgreSQL database has no directory: the user data directory's ``demo``.
    """
    from ..base import settings

    url = db_url or settings.resolve("db_url")
    if url.startswith(("postgres://", "postgresql://")) or url == ":memory:":
        from platformdirs import user_data_dir

        return Path(user_data_dir("cryodesk", appauthor=False)) / "demo"
    path = Path(url[len("sqlite:///"):] if url.startswith("sqlite:///") else url).expanduser()
    return path.resolve().parent / f"{path.stem}-demo"


def _run(project, job, progress: Progress | None, frac: float, cancel_after: int | None = None):
    event = threading.Event()
    calls = {"n": 0}

    def cb(f, msg):
        calls["n"] += 1
        if cancel_after is not None and calls["n"] >= cancel_after:
            event.set()  # the user pressed "kill" half-way

    if progress is not None:
        progress(frac, f"running {job.uid} {job.type}")
    return runner.run_job(project, job, progress=cb, cancel_event=event)


def create_demo_project(directory: Path | str, size: str = "small", seed: int = 0,
                        progress: Progress | None = None, title: str = "Demo: simulated apoferritin-like"):
    """Simulate data under ``directory/raw`` and build the demo project in ``directory/project``.

    Returns the :class:`~cryodesk.db.Project`.  Raises :class:`CryodeskError`
    if a job that must complete does not.
    """
    directory = Path(directory).expanduser().resolve()
    raw = directory / "raw"
    for place in (directory / "project", raw):  # a planted link would put the demo's writes wherever it points
        if place.is_symlink() and not (place == raw and (raw / "ground_truth.json").is_file()):
            raise UsageError(f"{place} is a symbolic link; the demo writes only into real directories "
                             "(choose another --dir; nothing was written)")
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is not a directory; choose another --dir (nothing was written)")
    if progress:
        progress(0.0, f"simulating a {size} dataset")
    if not (raw / "ground_truth.json").exists():
        if raw.exists() and (not raw.is_dir() or raw.is_symlink() or any(raw.iterdir())):
            # only simulated data of our own is ever reused or written there
            raise UsageError(f"{raw} already holds files that are not a simulated demo dataset; "
                             "choose another --dir (nothing was written)")
        try:
            simulate_dataset(raw, size=size, seed=seed)
        except OSError as exc:  # a --dir this user cannot write, a full disk
            where = f" ({exc.filename})" if exc.filename else ""
            raise UsageError(f"cannot write the demo's simulated data into {directory}: "
                             f"{exc.strerror or exc}{where}; choose another --dir") from None
    spec = load_truth(raw)["spec"]
    p = projects.create_project(title, directory / "project")
    main = projects.create_workspace(p, "Main line")
    explore = projects.create_workspace(p, "Exploration")

    def make(type_name, ws, inputs=(), **params):
        return jobs.create_job(p, type_name, ws, [jobs.InputSpec(*i) for i in inputs], params)

    steps = [
        ("import_movies", {"path": str(raw / "movies"), "psize_A": spec["psize_A"],
                           "total_dose_e_per_A2": spec["total_dose_e_per_A2"]}, []),
        ("motion_correction", {}, [("movies", "J1")]),
        ("ctf_estimation", {"amp_contrast": spec["amp_contrast"]}, [("micrographs", "J2")]),
        ("blob_picker", {"diameter_A": spec["particle_diameter_A"]}, [("micrographs", "J3")]),
        ("extract_particles", {"box_size_px": spec["box"]}, [("micrographs", "J3"), ("locations", "J4")]),
        ("class_2d", {"num_classes": 4, "num_iterations": 5}, [("particles", "J5")]),
        ("select_2d", {}, [("particles", "J6", "particles"), ("class_averages", "J6", "class_averages")]),
        ("restack_particles", {"particles_per_file": 50}, [("particles", "J7")]),
    ]
    total = len(steps) + 4
    made = []
    for n, (type_name, params, inputs) in enumerate(steps):
        job = make(type_name, main, inputs, **params)
        if type_name == "class_2d":
            from ..core.cleanup import set_job_setting

            # keep this job's per-iteration results: the demo shows what cleanup frees
            set_job_setting(p, job, "delete_intermediate", False)
        done = _run(p, job, progress, (n + 1) / (total + 1))
        if done.status != "completed":
            raise CryodeskError(f"demo: {done.uid} {done.type} ended {done.status}: {done.error}")
        made.append(done)
    finals.set_final(p, [made[-1]])
    actions.link(p, [made[4], made[5]], explore)  # extraction and 2D classes, linked (not copied)
    # an alternative picker with a wider blob and its extraction: non-final preprocessing
    pick2 = _run(p, make("blob_picker", explore, [("micrographs", "J3")],
                         diameter_A=spec["particle_diameter_A"] * 1.3), progress, 0.8)
    _run(p, make("extract_particles", explore, [("micrographs", "J3"), ("locations", pick2.uid)],
                 box_size_px=spec["box"]), progress, 0.85)
    # a classification the user killed after a few iterations (finished ones kept as intermediate)
    _run(p, make("class_2d", explore, [("particles", "J5")], num_classes=6, num_iterations=8), progress, 0.9,
         cancel_after=3)
    # the guide's consolidation: Downsample Particles on the selected particles, no parameter changed
    consolidated = _run(p, make("downsample_particles", explore, [("particles", "J7")]), progress, 0.93)
    if consolidated.status != "completed":
        raise CryodeskError(f"demo: {consolidated.uid} ended {consolidated.status}: {consolidated.error}")
    # a job that failed: Select 2D asked for a class the classification does not have
    _run(p, make("select_2d", explore, [("particles", "J6", "particles"), ("class_averages", "J6", "class_averages")],
                 classes="0,9"), progress, 0.97)
    from ..core.cleanup import on_project_open

    on_project_open(p)  # measure the whole project once
    if progress:
        progress(1.0, f"demo project {p.uid} ready")
    return p
