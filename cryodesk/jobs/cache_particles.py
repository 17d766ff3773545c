"""Job type ``cache_particles``: put a particle set on this worker's SSD cache, nothing else.

Run it ahead of a classification or refinement so that job finds its
particles already cached (it reuses the entries: same files, or the same
subset).  The job writes no output; its results record what was copied.
"""

from __future__ import annotations

from cryodesk.base.errors import DataError
from cryodesk.cache.config import resolve_config
from cryodesk.cache.staging import stage
from cryodesk.core.context import JobContext
from cryodesk.core.registry import InputSlot, JobType, Param, register

_SUBSET = {"auto": "auto", "always": True, "never": False}


def run_cache_particles(ctx: JobContext) -> None:
    config = getattr(ctx, "cache_config", None) or resolve_config()
    if not config.usable:
        raise DataError(f"{ctx.uid}: no SSD cache is configured for worker {config.worker!r} "
                        f"(cryodesk worker connect --ssdpath PATH, or set CRYODESK_SSD_PATH)")
    mode = _SUBSET[ctx.params.get("subset_mode", "auto")]
    with stage(ctx, ctx.inputs["particles"], cache_on=True, config=config, subset=mode,
               on_full="error") as staged:
        stats = staged.stats()
    ctx.results.update(cache=stats, ssd_path=str(config.root))
    ctx.log.info("%s: cached particles (%s): %d bytes copied, %d reused", ctx.uid, stats["mode"],
                 stats["bytes_copied"], stats["bytes_reused"])
    ctx.progress(1.0, f"particles cached on SSD ({stats['mode']})")


register(JobType(
    name="cache_particles", title="Cache Particles on SSD", category="utilities",
    params=(Param("subset_mode", "auto", "str", choices=tuple(_SUBSET),
                  help="Cache only the particles used (packed stacks): when it pays off, always, never"),),
    inputs=(InputSlot("particles", "particle", multiple=True, help="The particles to pre-stage."),),
    outputs=(),
    run=run_cache_particles, resource="io",
    description="Copy a particle set to this worker's SSD cache so later jobs read it from there.",
))
