"""Lanes: run jobs here, on another workstation sharing the database, or on a SLURM cluster.

:mod:`.service` keeps the lanes (add, list, show, remove); :mod:`.templates` fills in a SLURM
lane's script and commands; :mod:`.tracker` sends jobs to a lane, follows them there and kills them.
"""

from .service import KINDS, LaneInfo, add_lane, get_lane, list_lanes, remove_lane, show_lane
from .templates import COMMAND_VARIABLES, DEFAULT_SCRIPT, OVERRIDABLE, SCRIPT_VARIABLES, parse_vars
from .tracker import (
           EXIT_NAME,
           LANE_DIR,
           OUT_NAME,
           PENDING_STATES,
           RUNNING_STATES,
           SCRIPT_NAME,
           SendResult,
           SyncReport,
           cancel,
           job_lane_info,
           kill,
           lane_jobs_active,
           lane_status,
           node_command,
           on_slurm_lane,
           scheduler_states,
           script_path,
           script_values,
           send,
           submit_script,
           sync,
)

__all__ = ["COMMAND_VARIABLES", "DEFAULT_SCRIPT", "EXIT_NAME", "KINDS", "LANE_DIR", "LaneInfo", "OUT_NAME", "OVERRIDABLE",
           "PENDING_STATES", "RUNNING_STATES", "SCRIPT_NAME", "SCRIPT_VARIABLES", "SendResult", "SyncReport",
           "add_lane", "cancel", "get_lane", "job_lane_info", "kill", "lane_jobs_active", "lane_status", "list_lanes",
           "node_command", "on_slurm_lane", "parse_vars", "remove_lane", "scheduler_states", "script_path", "script_values", "send",
           "show_lane", "submit_script", "sync"]
