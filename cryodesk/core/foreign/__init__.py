"""Other programs' projects opened in place: RELION (read-write) and CryoSPARC (read-only audit).

``detect``        what a directory is (RELION, CryoSPARC, cryodesk)
``relion_state``  cryodesk's own state inside a RELION project (``.cryodesk/relion.json``: final flags)
``relion_lock``   RELION's ``.relion_lock`` mkdir lock, taken around every change
``relion_open``   the pipeline (and the disk) -> projects/jobs/connections rows
``relion_clean``  plans: clear (RELION's harsh clean), intermediate iterations, delete to ``Trash/``
``cryosparc_open`` CryoSPARC v4/v5 job documents -> rows, read only; its Cleanup Data preview
``service``       ``open_project(DIR)``: recognise and register (the CLI and the GUI call it)
"""
