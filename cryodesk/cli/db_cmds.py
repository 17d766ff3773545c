"""``cryodesk db compact``: reduce the database's size ("Reduce database size")."""

from __future__ import annotations

from ..core.units import human_bytes
from . import output


def _compact(args):
    from ..core import compact

    out = compact.compact_database(dry_run=args.dry_run, keep_events_hours=args.keep_events_hours)
    if args.json:
        output.emit_json(out)
        return 0
    for e in out["recovered"]:
        print(f"finished an interrupted move or delete: {e}")
    pruned = out["pruned"]
    orphans = sum((pruned.get("orphans") or {}).values())
    verb = "would prune" if args.dry_run else "pruned"
    print(f"{verb} {pruned['change']} change-log row(s), {pruned['applied_item']} finished journal row(s)"
          + ("" if args.dry_run else f", {orphans} orphaned row(s)"))
    if args.dry_run:
        print(f"database ({out['backend']}): {human_bytes(out['before_bytes'])}")
    else:
        print(f"database ({out['backend']}): {human_bytes(out['before_bytes'])} -> "
              f"{human_bytes(out['after_bytes'])} ({out['before_bytes']:,} -> {out['after_bytes']:,} bytes) "
              f"in {out['seconds']:.1f} s")
    return 0


def add_parser(cli) -> None:
    dsub = cli.group("db", help="database maintenance")
    c = dsub.add_parser("compact", help="prune old change-log and journal rows, orphans; VACUUM "
                                        "(refused while another process writes)")
    c.add_argument("--dry-run", action="store_true", help="say what would be pruned, change nothing")
    c.add_argument("--keep-events-hours", type=float, default=24.0, metavar="H",
                   help="keep change-log rows younger than this (default 24; open windows follow the log)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_compact)
