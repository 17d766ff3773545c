"""Issue 20, the bad-input corpus: every shape the hostile pass found, through the real CLI.

Each case (56: manifests, journals, parameters, uids, settings, URLs, import files) starts from the same small project (restored from a template: database file and
project directory), runs one command in-process through :func:`cryodesk.cli.main.main` with
captured output (a few through a subprocess, as a user types them), and asserts

* an exit code other than 0,
* a clear message that names the file or field at fault,
* no ``Traceback`` and no raw exception class name (``ValueError``, ``KeyError``, ...),
* nothing half-written: the project tree and every database table as they were (for a
  ``job run`` of a bad import: only that job's own row and its ``job.json``/``job.log`` change,
  and it ends *failed* with the reason, no partial output).

``test_corpus_counts`` prints the counts for the issue's note (cases, clear errors,
tracebacks, losses).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from cryodesk.cli.main import main

HUGE = "99999999999999999999"
SECRET = "S3cretPW"
RAW_NAMES = re.compile(r"\b(Traceback|ValueError|KeyError|TypeError|OSError|IndexError|AttributeError|"
                       r"UnicodeDecodeError|UnicodeEncodeError|OverflowError|MemoryError|RecursionError|"
                       r"IntegrityError|OperationalError|JSONDecodeError|FileNotFoundError|IsADirectoryError|"
                       r"NotADirectoryError|PermissionError|EOFError|ZeroDivisionError|AssertionError)\b")
#: results of every case, for test_corpus_counts
TALLY: dict[str, dict] = {}


@dataclass
class Case:
    argv: list[str]
    named: str  # what the message must name (a file or field; "{P}" is the project directory)
    prepare: Callable[[Path], None] | None = None
    run_job: str | None = None  # "J3": a job run whose job must end failed, nothing else changed
    other_db: bool = False  # the command runs against a fresh database (attach)
    subprocess: bool = False
    #: a crafted journal: the write command (recovery runs first) sets it aside with a warning and goes on
    #: (exit 0 is right); nothing of J1 (completed, its data on disk) may change
    journal: bool = False


# -- the template: P1 with W1; J1 (h_source, completed), J2 (h_step reading J1, building) ---------------

@pytest.fixture(scope="module")
def template(tmp_path_factory):
    base = tmp_path_factory.mktemp("corpus")
    from cryodesk import db as dbmod
    from cryodesk.core import jobs, projects, runner

    os.environ.setdefault("XDG_CONFIG_HOME", str(base / "config"))
    dbmod.open_database(str(base / "db.sqlite"))
    try:
        with dbmod.db.connection_context():
            p = projects.create_project("Corpus", base / "proj")
            projects.create_workspace(p, "main")
            a = jobs.create_job(p, "h_source", "W1", params={"nbytes": 64})
            runner.run_job(p, a)
            jobs.create_job(p, "h_step", "W1", inputs=[jobs.InputSpec("particles", a.uid, "particles")])
    finally:
        dbmod.close_database()
    shutil.copytree(base / "proj", base / "proj.template", symlinks=True)
    shutil.copy2(base / "db.sqlite", base / "db.template")
    return base


def _restore(base: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{base / 'db.sqlite'}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(base / "proj")
    shutil.copytree(base / "proj.template", base / "proj", symlinks=True)
    shutil.copy2(base / "db.template", base / "db.sqlite")
    for extra in ("other.sqlite", "other.sqlite-wal", "other.sqlite-shm", "inputs"):
        path = base / extra
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    (base / "inputs").mkdir()


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest()
        else:
            out[rel] = "dir"
    return out


def _tables(db: Path) -> dict[str, list]:
    if not db.exists():
        return {}
    con = sqlite3.connect(db)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: sorted(map(repr, con.execute(f'SELECT * FROM "{n}"'))) for n in names}
    finally:
        con.close()


# -- shapes --------------------------------------------------------------------------------------

def _edit(rel: str, fn) -> Callable[[Path], None]:
    def prep(base: Path) -> None:
        path = base / "proj" / rel
        d = json.loads(path.read_text())
        fn(d)
        path.write_text(json.dumps(d))
    return prep


def _write(rel: str, data: bytes) -> Callable[[Path], None]:
    def prep(base: Path) -> None:
        (base / "proj" / rel).write_bytes(data)
    return prep


def _dup_job(name: str) -> Callable[[Path], None]:
    def prep(base: Path) -> None:
        shutil.copytree(base / "proj" / "J1", base / "proj" / name)
        _edit(f"{name}/job.json", lambda d: d.update(uid=name))(base)
    return prep


def _input(name: str, data: bytes | None = None, fifo: bool = False) -> Callable[[Path], None]:
    def prep(base: Path) -> None:
        path = base / "inputs" / name
        if fifo:
            os.mkfifo(path)
        else:
            path.write_bytes(data)
    return prep


def _journal(doc) -> Callable[[Path], None]:
    def prep(base: Path) -> None:
        jd = base / "proj" / ".cryodesk" / "journal"
        jd.mkdir(parents=True, exist_ok=True)
        (jd / "abcdefabcdef.json").write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    return prep


def _jcase(doc, named: str) -> Case:
    return Case(["job", "clear", "P1", "J2"], named, _journal(doc), journal=True)


def _item(job: str, action: str = "clear", paths=("J1/data.bin",)) -> dict:
    return {"id": "abcdefabcdef", "project": "P1", "items": [{"job": job, "action": action, "paths": list(paths)}]}


def _npy_cs(fields) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros(2, dtype=fields))
    return buf.getvalue()


ATTACH = ["project", "attach", "{P}"]
STAR_OK_HEAD = b"data_particles\nloop_\n_rlnImageName #1\n"


def _import(name: str, prep, named: str | None = None) -> Case:
    return Case(["job", "create", "P1", "import_particles", "-p", f"particle_meta_path={{B}}/inputs/{name}"],
                named or name, prep, run_job="J3")


CASES: dict[str, Case] = {
    # item 8 / 9: project attach of damaged manifests (into a fresh database)
    "attach: self input": Case(ATTACH, "J2/job.json: inputs", _edit("J2/job.json", lambda d: d["inputs"][0].update(
        parent="J2")), other_db=True),
    "attach: 2-cycle": Case(ATTACH, "job.json: inputs", _edit("J1/job.json", lambda d: d.update(inputs=[
        {"slot": "particles", "parent": "J2", "output": "particles"}])), other_db=True),
    "attach: failed job final": Case(ATTACH, "J1/job.json: is_final", _edit("J1/job.json", lambda d: d.update(
        status="failed", is_final=True)), other_db=True),
    "attach: output outside": Case(ATTACH, "J1/job.json: outputs[0].path", _edit("J1/job.json", lambda d: d[
        "outputs"][0].update(path="J1/../../outside.bin")), other_db=True),
    "attach: workspace without uid": Case(ATTACH, "project.json: workspaces[0]", _edit("project.json", lambda d: d.update(
        workspaces=[{"title": "x"}])), other_db=True),
    "attach: next_job_number abc": Case(ATTACH, "project.json: next_job_number", _edit("project.json", lambda d: d.update(
        next_job_number="abc")), other_db=True),
    "attach: next_job_number huge": Case(ATTACH, "project.json: next_job_number", _edit("project.json", lambda d: d.update(
        next_job_number=int(HUGE))), other_db=True),
    "attach: created_at yesterday": Case(ATTACH, "J1/job.json: created_at", _edit("J1/job.json", lambda d: d.update(
        created_at="yesterday")), other_db=True),
    "attach: 20-digit job": Case(ATTACH, f"J{HUGE}/job.json: uid", _dup_job(f"J{HUGE}"), other_db=True),
    "attach: J9 and J09": Case(ATTACH, "J09/job.json: uid", _dup_job("J09"), other_db=True),
    "attach: output version abc": Case(ATTACH, "J1/job.json: outputs[0].version", _edit("J1/job.json", lambda d: d[
        "outputs"][0].update(version="abc")), other_db=True),
    "attach: size NaN-like string": Case(ATTACH, "J1/job.json: size_bytes", _edit("J1/job.json", lambda d: d.update(
        size_bytes="1e999")), other_db=True),
    "attach: job.json a list": Case(ATTACH, "J1/job.json", _write("J1/job.json", b"[1, 2]"), other_db=True),
    "attach: job.json invalid UTF-8": Case(ATTACH, "J1/job.json", _write("J1/job.json", b'{"uid": "J1\xff"}'),
                                           other_db=True),
    "attach: project.json NUL bytes": Case(ATTACH, "project.json", _write("project.json", b"{\x00\x00}"),
                                           other_db=True),
    "attach: project.json deep nesting": Case(ATTACH, "project.json", _write("project.json", b"[" * 100000),
                                              other_db=True),
    "attach: project.json truncated": Case(ATTACH, "project.json", _write("project.json", b'{"title": "Cor'),
                                           other_db=True),
    # item 12: parameter values (set time and create time)
    "set-param abc": Case(["job", "set-param", "P1", "J2", "nbytes=abc"], "nbytes"),
    "set-param 20 digits": Case(["job", "set-param", "P1", "J2", f"nbytes={HUGE}"], "nbytes"),
    "set-param NUL": Case(["job", "set-param", "P1", "J2", "nbytes=1\x002"], "nbytes"),
    "set-param unknown": Case(["job", "set-param", "P1", "J2", "no_such=1"], "no_such"),
    "create param abc": Case(["job", "create", "P1", "h_source", "-p", "nbytes=abc"], "nbytes"),
    "create param 20 digits": Case(["job", "create", "P1", "h_source", "-p", f"nbytes={HUGE}"], "nbytes"),
    "create bad input": Case(["job", "create", "P1", "h_step", "-i", f"particles=J{HUGE}"], HUGE),
    "create unknown type": Case(["job", "create", "P1", "no_such_type"], "no_such_type"),
    "huge job uid": Case(["job", "show", "P1", f"J{HUGE}"], HUGE),
    "huge project uid": Case(["job", "show", f"P{HUGE}", "J1"], HUGE),
    "job uid abc": Case(["job", "show", "P1", "Jabc"], "Jabc"),
    "setting nan": Case(["settings", "set", "cache_lifetime_days", "nan", "--user"], "cache_lifetime_days"),
    "setting abc": Case(["settings", "set", "ssd_reserve_mb", "abc", "--user"], "ssd_reserve_mb"),
    # item 13: database URLs (the password never shown; checked for every case below too)
    "db url # in password": Case(["--db", f"postgresql://alice:{SECRET[:3]}#{SECRET}@127.0.0.1:1/db", "project",
                                  "list"], "127.0.0.1:1/db"),
    "db url no host": Case(["--db", f"postgresql://alice:{SECRET}/db", "project", "list"], "database URL"),
    "db url scheme": Case(["--db", f"mysql://alice:{SECRET}@h/db", "project", "list"], "unsupported database URL"),
    # bad input files read by a job (item 11 FIFO, item 12, malformed STAR / .cs / .csg)
    "import: FIFO": _import("p.star", _input("p.star", fifo=True)),
    "import: missing": _import("nope.star", None),
    "import: FIFO stack": _import("p.star", lambda b: (_input("p.star", STAR_OK_HEAD + b"1@s.mrcs\n")(b),
                                                       _input("s.mrcs", fifo=True)(b)), "s.mrcs: the particle stack is a FIFO"),
    "import: STAR invalid UTF-8": _import("p.star", _input("p.star", STAR_OK_HEAD + b"1@st\xff\xfeack.mrcs\n")),
    "import: STAR no loop": _import("p.star", _input("p.star", b"data_particles\n_rlnImageName x\n")),
    "import: STAR NUL": _import("p.star", _input("p.star", STAR_OK_HEAD + b"1@a\x00b.mrcs\n")),
    "import: STAR huge index": _import("p.star", _input("p.star", STAR_OK_HEAD + f"{HUGE}@a.mrcs\n".encode())),
    "import: STAR index 5.5": _import("p.star", _input("p.star", STAR_OK_HEAD + b"5.5@a.mrcs\n")),
    "import: STAR outside path": _import("p.star", _input("p.star", STAR_OK_HEAD + b"1@../../outside/o.mrcs\n"),
                                         "o.mrcs"),
    "import: cs truncated": _import("p.cs", _input("p.cs", _npy_cs([("uid", "<u8"), ("blob/path", "S8"),
                                                                   ("blob/idx", "<u4")])[:-5])),
    "import: cs not npy": _import("p.cs", _input("p.cs", b"\x00" * 64)),
    "import: cs no blob fields": _import("p.cs", _input("p.cs", _npy_cs([("uid", "<u8")]))),
    "import: cs huge shape": _import("p.cs", _input("p.cs", _npy_cs([("uid", "<u8")]).replace(
        b"(2,)", b"(99999999999999,)"))),
    "import: csg garbage": _import("p.csg", _input("p.csg", b"\xff\xfe: [")),
    "import: unsupported suffix": _import("p.txt", _input("p.txt", b"hello")),
    # crafted or damaged deletion journals (item 9's ".." included): refused, set aside, nothing applied
    "journal: garbage": _jcase(b"\xff\x00{", "abcdefabcdef.json"),
    "journal: a list": _jcase(b"[1]", "abcdefabcdef.json"),
    "journal: job ..": _jcase(_item(".."), "'..' is not a job uid"),
    "journal: job 20 digits": _jcase(_item(f"J{HUGE}"), f"'J{HUGE}' is not a job uid"),
    "journal: discard a completed job": _jcase(_item("J1", "discard"), "abcdefabcdef.json set aside"),
    "journal: path outside": _jcase(_item("J1", paths=("J1/../../outside",)), "abcdefabcdef.json set aside"),
    # as a user types it: argv bytes that are not UTF-8 (one subprocess: each costs seconds here)
    "subprocess: invalid UTF-8 uid": Case(["job", "show", "P1", "J\udcff"], "J"),
    "db url ? in password": Case(["--db", f"postgresql://alice:{SECRET}?x@127.0.0.1:1/db", "project", "list"],
                                  "127.0.0.1:1/db"),
}
CASES["subprocess: invalid UTF-8 uid"].subprocess = True


def _subprocess(base: Path, argv: list[str]) -> tuple[int, str]:
    code = ("import sys; sys.path[:0] = [%r]; import cryodesk.jobs, jobtypes; jobtypes.family('h', "
            "iter_multiple=True); from cryodesk.cli.main import main; sys.exit(main(sys.argv[1:]))"
            % str(Path(__file__).resolve().parents[1]))
    env = {**os.environ, "CRYODESK_DB": str(base / "db.sqlite")}
    proc = subprocess.run([sys.executable, "-c", code, *[os.fsencode(a) for a in argv]], env=env,
                          capture_output=True, timeout=120)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def _run(base: Path, case: Case, capsys, monkeypatch) -> tuple[int, str]:
    sub = {"{P}": str(base / "proj"), "{B}": str(base)}
    argv = [re.sub(r"\{[PB]\}", lambda m: sub[m.group(0)], a) for a in case.argv]
    if case.subprocess:
        return _subprocess(base, argv)
    monkeypatch.setenv("CRYODESK_DB", str(base / ("other.sqlite" if case.other_db else "db.sqlite")))
    code = main(argv)
    if case.run_job:
        assert code == 0, capsys.readouterr()
        code = main(["job", "run", "P1", case.run_job])
        out, err = capsys.readouterr()
        main(["job", "show", "P1", case.run_job, "--json"])
        shown = json.loads(capsys.readouterr()[0])
        assert shown["status"] == "failed", shown
        return code, out + err + "\n" + (shown["error"] or "")
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(template, name, capsys, monkeypatch, request):
    if CASES[name].run_job:  # job run in-process starts the engine's Qt loop: a QApplication first, as the
        request.getfixturevalue("qapp")  # GUI tests need (a bare QCoreApplication would abort a later window)
    base = template
    case = CASES[name]
    _restore(base)
    if case.prepare is not None:
        case.prepare(base)
    tree, tables = _tree(base / "proj"), _tables(base / "db.sqlite")
    result = TALLY[name] = {"clear": False, "traceback": False, "loss": False}
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    code, text = _run(base, case, capsys, monkeypatch)
    result["traceback"] = "Traceback" in text
    after_tree, after_tables = _tree(base / "proj"), _tables(base / "db.sqlite")
    if case.run_job:  # the failed job's own row and files may change; nothing else, and no partial output
        job_dir = f"{case.run_job}/"
        assert sorted(k for k in after_tree if k.startswith(job_dir)) == [f"{job_dir}job.json", f"{job_dir}job.log"]
        # creating the job bumped the project's job counter (project.json): part of the setup, not of the run
        mine = (case.run_job, "project.json")
        keep = {k: v for k, v in after_tree.items() if not k.startswith(job_dir) and k not in mine}
        tree = {k: v for k, v in tree.items() if not k.startswith(job_dir) and k not in mine}
        after_tree = keep
        for t in ("job", "project", "job_workspace", "change", "event", "events", "change_log"):
            tables.pop(t, None)
            after_tables.pop(t, None)
    if case.journal:  # set aside in .cryodesk/ (with its reason); the command then went on
        mine = (".cryodesk", "J2/", "project.json")  # the journal's place, and what the clear of J2 writes
        tree = {k: v for k, v in tree.items() if not k.startswith(mine)}
        after_tree = {k: v for k, v in after_tree.items() if not k.startswith(mine)}
        for t in ("job", "project", "change", "event", "events", "change_log"):  # J2's row, the project's stamp
            tables.pop(t, None)
            after_tables.pop(t, None)
        assert "J1/data.bin" in after_tree
        code = code or 1  # exit 0 is right here: the journal was refused, the clear of J2 then done
    result["loss"] = after_tree != tree or after_tables != tables
    named = case.named.replace("{P}", str(base / "proj"))
    result["clear"] = code != 0 and named in text and not RAW_NAMES.search(text) and SECRET not in text
    assert not result["traceback"], text
    assert code != 0, text
    assert named in text, (named, text)
    assert not RAW_NAMES.search(text), text
    assert SECRET not in text, text
    assert not result["loss"], {k: (tree.get(k), after_tree.get(k)) for k in set(tree) | set(after_tree)
                                if tree.get(k) != after_tree.get(k)} or {
        t: set(tables.get(t, [])) ^ set(after_tables.get(t, [])) for t in set(tables) | set(after_tables)
        if tables.get(t) != after_tables.get(t)}
    if case.other_db:
        assert not _tables(base / "other.sqlite").get("project"), "half-attached"


def test_corpus_counts(capsys):
    """The note's figures (after the corpus ran in this process)."""
    if not TALLY:
        pytest.skip("the corpus did not run in this process")
    n = len(TALLY)
    clear = sum(r["clear"] for r in TALLY.values())
    tracebacks = sum(r["traceback"] for r in TALLY.values())
    losses = sum(r["loss"] for r in TALLY.values())
    with capsys.disabled():
        print(f"\nbad-input corpus: {n} cases tried, {clear} clear errors, {tracebacks} tracebacks, {losses} losses")
    assert clear == n and tracebacks == 0 and losses == 0
