"""``cryodesk worker connect|list``, ``cryodesk cache status|clear|warm|estimate``,
``cryodesk project set-default``."""

from __future__ import annotations

from ..base.errors import DataError, UsageError
from ..core.units import human_bytes
from . import output


def _config(args):
    from ..cache.config import resolve_config

    return resolve_config(getattr(args, "worker", None))


def _connect(args):
    from ..cache.workers import connect_worker, worker_dict

    w = connect_worker(args.worker, ssd_path=args.ssdpath, quota_mb=args.ssdquota,
                       reserve_mb=args.ssdreserve, no_ssd=args.nossd, update=args.update,
                       settings={"cache_num_threads": args.cache_threads,
                                 "cache_lifetime_days": args.lifetime_days,
                                 "cache_subset_threshold": args.subset_threshold})
    d = worker_dict(w)
    if args.json:
        output.emit_json(d)
    elif w.no_ssd:
        print(f"worker {w.name}: SSD cache disabled")
    else:
        from ..cache.config import MB, reserve_advice

        quota = f"{w.ssd_quota_mb} MB" if w.ssd_quota_mb else "none"
        reserve = f"{w.ssd_reserve_mb} MB" if w.ssd_reserve_mb else "none"
        print(f"worker {w.name}: SSD cache at {w.ssd_path} (quota {quota}, reserve {reserve})")
        advice = reserve_advice(w.ssd_path, (w.ssd_reserve_mb or 0) * MB, w.name)
        if advice:
            print(f"  {advice}")


def _workers(args):
    from ..cache.workers import list_workers, worker_dict

    data = [worker_dict(w) for w in list_workers()]
    if args.json:
        output.emit_json(data)
        return
    output.table([[d["name"], "no SSD" if d["no_ssd"] else (d["ssd_path"] or "-"),
                   str(d["ssd_quota_mb"] or "-"), str(d["ssd_reserve_mb"])] for d in data],
                 ["worker", "ssd path", "quota MB", "reserve MB"])


def _cache():
    from ..cache.store import Cache

    return Cache


def _status(args):
    cfg = _config(args)
    if not cfg.usable:
        raise DataError(f"no SSD cache is configured for worker {cfg.worker!r} "
                        f"(cryodesk worker connect --ssdpath PATH, or set CRYODESK_SSD_PATH)")
    st = _cache()(cfg).status()
    if args.json:
        output.emit_json(st)
        return 0
    from ..cache.config import reserve_advice

    quota = human_bytes(st["quota_bytes"]) if st["quota_bytes"] is not None else "none"
    reserve = human_bytes(st["reserve_bytes"]) if st["reserve_bytes"] else "none"
    print(f"SSD cache of worker {st['worker']} ({st['config_source']}): {st['path']}")
    print(f"  used {human_bytes(st['used_bytes'])} in {st['entries']} entries "
          f"({human_bytes(st['held_bytes'])} held by running jobs)")
    print(f"  quota {quota}, reserve {reserve}, disk free "
          f"{human_bytes(st['disk_free_bytes'])} of {human_bytes(st['disk_total_bytes'])}, "
          f"available to the cache {human_bytes(st['available_bytes'])}")
    advice = reserve_advice(cfg.ssd_path, st["reserve_bytes"], cfg.worker)
    if advice:
        print(f"  {advice}")
    for proj, d in sorted(st["by_project"].items()):
        print(f"  {proj}: {d['entries']} entries, {human_bytes(d['bytes'])}")
    for lk in st["locks"]:
        print(f"  lock: pid {lk['pid']} {lk['mode']} {lk['kind']} {lk['key']}")
    return 0


def _clear(args):
    cfg = _config(args)
    if not cfg.usable:
        raise DataError(f"no SSD cache is configured for worker {cfg.worker!r}")
    res = _cache()(cfg).clear(args.project)
    if args.json:
        output.emit_json(res)
    else:
        print(f"removed {res['removed']} entries, freed {human_bytes(res['bytes_freed'])}"
              + (f"; {res['held_skipped']} in use by running jobs were kept" if res["held_skipped"] else ""))
    return 0


def _warm(args):
    from ..cache.service import warm_job_output

    show = None if args.json else _printer()
    res = warm_job_output(args.project, args.job, output=args.output, subset=args.subset,
                          config=_config(args), progress=show)
    if args.json:
        output.emit_json(res)
    else:
        print(f"{res['project']} {res['job']}: cached ({res['mode']}), copied "
              f"{human_bytes(res['bytes_copied'])}, already cached {human_bytes(res['bytes_reused'])}")
    return 0


def _printer():
    import sys

    def show(fraction, msg):
        print(f"\r{msg}", end="", file=sys.stderr, flush=True)
        if fraction >= 1:
            print(file=sys.stderr)

    return show


def _estimate(args):
    from ..cache.estimate import describe_formula, estimate_formula

    if args.project:
        if not args.job:
            raise UsageError("give both PROJECT and JOB (a particle output), or --count and --box")
        from ..cache.service import estimate_job_output

        res = estimate_job_output(args.project, args.job, output=args.output, config=_config(args))
    else:
        if args.count is None or args.box is None:
            raise UsageError("give PROJECT JOB (exact, from a particle output) or --count N --box B")
        res = estimate_formula(args.count, args.box, nsymbt=args.nsymbt, header=args.header,
                               bytes_per_pixel=args.bytes_per_pixel)
    if args.json:
        output.emit_json(res)
    elif res["method"] == "formula":
        print(describe_formula(res))
    else:
        sub = human_bytes(res["subset_bytes"]) if res.get("subset_bytes") is not None else "n/a"
        print(f"{res['project']} {res['job']}: {res['particles']:,} particles in {res['stacks']} stacks; "
              f"whole stacks {human_bytes(res['whole_stacks_bytes'])}, only the particles used {sub}; "
              f"auto caching would copy {human_bytes(res['bytes'])} ({res['auto_mode']})")
    return 0


def _set_default(args):
    from ..cache.workers import set_project_default

    if args.unset:
        defaults = set_project_default(args.project, args.assignment, unset=True)
    else:
        if "=" not in args.assignment:
            raise UsageError(f"expected KEY=VALUE, got {args.assignment!r}")
        key, value = args.assignment.split("=", 1)
        defaults = set_project_default(args.project, key.strip(), value.strip())
    if args.json:
        output.emit_json(defaults)
    else:
        print(f"{args.project} job defaults: " + (", ".join(f"{k}={v}" for k, v in sorted(defaults.items()))
                                                  or "none"))
    return 0


def add_parser(cli) -> None:
    wsub = cli.group("worker", help="connect workers and configure their SSD cache")
    c = wsub.add_parser("connect", help="register a worker (this host by default) and its SSD cache")
    c.add_argument("--worker", help="worker name (default: this host's name)")
    c.add_argument("--ssdpath", help="directory on the worker's SSD for the particle cache")
    c.add_argument("--ssdquota", type=int, metavar="MB", help="most the cache may hold (0: no quota)")
    c.add_argument("--ssdreserve", type=int, metavar="MB", help="free space always left on the SSD "
                   "(default none, as the guide; a value is suggested)")
    c.add_argument("--nossd", action="store_true", help="this worker has no SSD cache")
    c.add_argument("--cache-threads", type=int, metavar="N", help="copy threads (default 2)")
    c.add_argument("--lifetime-days", type=float, metavar="D",
                   help="purge entries unused for D days (default 30)")
    c.add_argument("--subset-threshold", type=float, metavar="F", help="cache only the particles "
                   "used when they are at most this fraction of their stacks (default 0.5)")
    c.add_argument("--update", action="store_true", help="change the settings of a connected worker")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_connect)
    ls = wsub.add_parser("list", help="list workers and their SSD settings")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_workers)

    csub = cli.group("cache", help="the SSD particle cache: status, clear, warm, estimate")
    s = csub.add_parser("status", help="path, quota, reserve, use, entries by project, locks held")
    s.add_argument("--worker")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_status)
    cl = csub.add_parser("clear", help="remove cached entries no running job holds")
    cl.add_argument("--project", help="only entries last used by this project (P1)")
    cl.add_argument("--worker")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=_clear)
    w = csub.add_parser("warm", help="copy a job's particle output to the SSD cache now")
    w.add_argument("project")
    w.add_argument("job")
    w.add_argument("--output", help="the particle output group (when the job has several)")
    w.add_argument("--subset", choices=("auto", "always", "never"), default="auto")
    w.add_argument("--worker")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=_warm)
    e = csub.add_parser("estimate", help="SSD space a particle set needs")
    e.add_argument("project", nargs="?")
    e.add_argument("job", nargs="?")
    e.add_argument("--output")
    e.add_argument("--count", type=int, metavar="N")
    e.add_argument("--box", type=int, metavar="PX")
    e.add_argument("--nsymbt", type=int, default=128, help="extended header bytes (default 128, as the guide)")
    e.add_argument("--header", type=int, default=1024, help="header bytes (default 1024, as the guide)")
    e.add_argument("--bytes-per-pixel", type=int, default=4, help="4 = float32, 2 = float16")
    e.add_argument("--worker")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_estimate)

    psub = cli.group("project")
    d = psub.add_parser("set-default", help="set a project-wide job parameter default, e.g. "
                           "cache_particles=false (= cryodesk settings set KEY VALUE --project P)")
    d.add_argument("project")
    d.add_argument("assignment", metavar="KEY=VALUE", help="e.g. cache_particles=false; with --unset: KEY")
    d.add_argument("--unset", action="store_true", help="remove the default KEY")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_set_default)
