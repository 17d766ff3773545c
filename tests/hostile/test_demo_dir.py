"""``cryodesk demo --dir D`` writes its simulated raw data into ``D/raw`` over whatever is there.

The command refuses a ``D/project`` that holds a project, but ``D/raw`` is
only checked for ``ground_truth.json``: a user's own ``D/raw/movies/movie_000.mrc``
(or ``D/raw/phantom.mrc``) is silently replaced by simulated data.
"""

from __future__ import annotations

from cryodesk.cli.main import main


def test_demo_never_overwrites_existing_raw_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))
    movies = tmp_path / "d" / "raw" / "movies"
    movies.mkdir(parents=True)
    (movies / "movie_000.mrc").write_bytes(b"the user's real movie")
    main(["demo", "--dir", str(tmp_path / "d")])
    capsys.readouterr()
    assert (movies / "movie_000.mrc").read_bytes() == b"the user's real movie"
