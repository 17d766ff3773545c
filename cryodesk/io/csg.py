"""CryoSPARC ``.csg`` group manifests (YAML) written next to job outputs.

A ``.csg`` names an output group and, for each *result* (the field prefix:
``blob``, ``ctf``, ``location``, ``alignments3D``...), the ``.cs`` file that
holds it.  A ``metafile`` starting with ``>`` is relative to the ``.csg``
file's own directory (this is how "Import Result Group" finds the files)::

    created: 2024-01-01 12:00:00.000000
    group:
      description: ...
      name: particles
      title: Particles
      type: particle
    results:
      blob:
        metafile: '>J5_particles.cs'
        num_items: 1000
        type: particle.blob
      ...
    version: v4.4.1

API summary
-----------
``CsgResult(name, type, metafile, num_items)``
``CsgGroup(name, type, title='', description='', results={}, version=..., created=...)``
``CsgGroup.metafile_path(result, csg_path) -> Path``
``read_csg(path) -> CsgGroup``
``write_csg(path, group) -> Path`` (atomic)
``load_group(path) -> ndarray``     the dataset a manifest describes: every result's fields
                                  from its metafile, joined on ``uid`` (Import Result Group)
``group_for_dataset(name, type, cs_filename, data, title='', description='') -> CsgGroup``
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import atomic_write
from cryodesk.base.nofollow import require_regular

__all__ = ["CsgResult", "CsgGroup", "read_csg", "write_csg", "group_for_dataset", "load_group"]

#: The CryoSPARC version whose manifest layout we write.
CSG_VERSION = "v4.4.1"


@dataclass
class CsgResult:
    """One result of a group: which ``.cs`` file holds fields ``<name>/*``."""

    name: str
    type: str
    metafile: str
    num_items: int


@dataclass
class CsgGroup:
    """A parsed ``.csg`` manifest."""

    name: str
    type: str
    title: str = ""
    description: str = ""
    results: dict[str, CsgResult] = field(default_factory=dict)
    version: str = CSG_VERSION
    created: str = ""

    def metafile_path(self, result: str, csg_path: Path | str) -> Path:
        """Filesystem path of the ``.cs`` file that holds ``result``.

        ``>name`` is relative to the ``.csg``; a plain relative path is tried
        there and then in the directory above (CryoSPARC's project-relative
        ``J5/J5_particles.cs`` next to a manifest in ``J5/``).
        """
        meta = self.results[result].metafile
        base = Path(csg_path).parent
        if meta.startswith(">"):
            return base / meta[1:]
        if Path(meta).is_absolute() or (base / meta).exists() or not (base.parent / meta).exists():
            return base / meta
        return base.parent / meta

    def metafiles(self, csg_path: Path | str) -> list[Path]:
        """The distinct ``.cs`` files of this group, first-seen order."""
        seen: dict[Path, None] = {}
        for name in self.results:
            seen.setdefault(self.metafile_path(name, csg_path), None)
        return list(seen)

    def to_dict(self) -> dict:
        return {
            "created": self.created or _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
            "group": {"description": self.description, "name": self.name,
                      "title": self.title or self.name, "type": self.type},
            "results": {k: {"metafile": r.metafile, "num_items": int(r.num_items), "type": r.type}
                        for k, r in sorted(self.results.items())},
            "version": self.version,
        }


def read_csg(path: Path | str) -> CsgGroup:
    """Parse the manifest at ``path``; DataError if missing or malformed."""
    import yaml  # here: 30 ms that every CLI command (all job types are imported) would pay

    path = Path(path)
    require_regular(path, "group manifest")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: group manifest not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: malformed .csg manifest ({exc})") from None
    try:
        grp = doc["group"]
        results = {}
        for name, r in (doc.get("results") or {}).items():
            results[str(name)] = CsgResult(str(name), str(r.get("type", f"{grp['type']}.{name}")),
                                           str(r["metafile"]), int(r.get("num_items", 0)))
        return CsgGroup(name=str(grp["name"]), type=str(grp["type"]), title=str(grp.get("title") or ""),
                        description=str(grp.get("description") or ""), results=results,
                        version=str(doc.get("version", "")), created=str(doc.get("created", "")))
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise DataError(f"{path}: malformed .csg manifest (missing or bad entry {exc})") from None


def write_csg(path: Path | str, group: CsgGroup, durable: bool = False) -> Path:
    """Write ``group`` to ``path`` (:func:`~cryodesk.base.fsio.atomic_write`)."""
    import yaml

    path = Path(path)
    atomic_write(path, yaml.safe_dump(group.to_dict(), default_flow_style=False, sort_keys=True), durable)
    return path


def group_for_dataset(name: str, type: str, cs_filename: str, data, title: str = "",
                      description: str = "") -> CsgGroup:
    """A manifest listing every result (field prefix) of ``data`` in ``cs_filename``.

    ``cs_filename`` is written as ``'>' + cs_filename``: relative to the ``.csg``.
    """
    from cryodesk.io.cs import result_prefixes

    results = {p: CsgResult(p, f"{type}.{p}", f">{cs_filename}", len(data))
               for p in result_prefixes(data)}
    return CsgGroup(name=name, type=type, title=title or name, description=description,
                    results=results)


def load_group(path: Path | str):
    """The particle dataset of a ``.csg``: the ``blob`` metafile plus each other result's fields.

    Each result ``name`` contributes the fields ``name/*`` of its metafile (a
    passthrough file holds many results; only the listed ones are taken),
    rows matched on ``uid``.  Returns ``(data, blob_metafile)``.
    """
    from cryodesk.io.cs import join_on_uid, read_cs

    path = Path(path)
    group = read_csg(path)
    if "blob" not in group.results:
        raise DataError(f"{path}: the group {group.name!r} has no blob result (not a particle group?)")
    main = group.metafile_path("blob", path)
    data = read_cs(main)
    files = {main: data}
    for name in group.results:
        meta = group.metafile_path(name, path)
        if meta not in files:
            files[meta] = read_cs(meta)
        fields = [f for f in files[meta].dtype.names if f.startswith(f"{name}/")]
        if not fields:
            raise DataError(f"{meta}: no {name}/ fields, though {path} lists it for result {name!r}")
        if meta != main and any(f not in data.dtype.names for f in fields):
            try:
                data = join_on_uid(data, files[meta][["uid", *fields]])
            except DataError as exc:
                raise DataError(f"{path}: result {name!r} from {meta}: {exc}") from None
    return data, main
