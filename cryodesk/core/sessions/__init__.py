"""Live sessions: streaming preprocessing of arriving exposures (see :mod:`.service`).

The model and its status machine (:mod:`.service`), parameters and
thresholds (:mod:`.params`), compaction and restoration (:mod:`.compaction`).
The stage code is :mod:`cryodesk.jobs.live`; the runner that watches the
movie directory and feeds the engine is :mod:`cryodesk.engine.live`.
"""

from . import lane_run  # noqa: F401
from .compaction import CompactionPlan, compact, compaction_plan, discard_temp, export_jobs, start_restore  # noqa: F401
from .params import DEFAULTS, apply_assignments, judge, merged  # noqa: F401
from .service import (  # noqa: F401
    ACTIVE,
    KINDS,
    STAGES,
    STATUSES,
    TODO_STAGES,
    add_exposures,
    count_failed,
    create,
    current,
    describe,
    describe_exposure,
    exposures,
    fail_exposure,
    get_exposure,
    get_session,
    known_movies,
    list_sessions,
    movie_problem,
    output_name,
    project_dirs,
    record_stage,
    refuse_if_compacted,
    reset_failed,
    runner_active,
    runner_lock,
    session_dir,
    set_lane,
    set_manual,
    set_manual_picks,
    set_params,
    set_status,
    set_thresholds,
    stage_counts,
    stage_dir,
    symlink_problem,
    todo,
    transition,
    update_size,
)
