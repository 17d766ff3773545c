"""Synthetic demo data with known ground truth (Qt-free).

:func:`simulate_dataset` writes movies, micrographs and ``ground_truth.json``;
:mod:`cryodesk.demo.pipeline` runs the built-in jobs on them without the engine.
"""

from .simulate import SIZES, SimulationSpec, load_truth, simulate_dataset

__all__ = ["SIZES", "SimulationSpec", "load_truth", "simulate_dataset"]
