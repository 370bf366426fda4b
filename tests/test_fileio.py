"""Atomic writes after a killed run: the next write of a file removes the temporary files a
killed writer of that file left behind (``.NAME.XXXXXXXX.part``), and nothing else."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from lth.fileio import atomic_path, stale_temporaries, write_json

from conftest import ROOT


def _parts(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_a_killed_writer_leaves_a_part_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "result.json"
    # A writer killed (SIGKILL) between writing its temporary file and the rename, as a job is
    # when its node is lost.
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT / "src")!r})
        from lth.fileio import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    left = _parts(tmp_path)
    assert len(left) == 1 and left[0].startswith(".result.json."), left

    write_json(target, {"ok": 1})  # the job runs again
    assert _parts(tmp_path) == []
    assert target.read_text() == '{\n  "ok": 1\n}\n'


@pytest.mark.bitwise
def test_only_the_same_files_leftovers_are_removed(tmp_path):
    target = tmp_path / "model.pt"
    stale = [tmp_path / ".model.pt.k3j_9x2a.part", tmp_path / ".model.pt.00000000.part"]
    others = [
        tmp_path / ".model.pt.gz.k3j_9x2a.part",  # a temporary of model.pt.gz
        tmp_path / ".other.pt.k3j_9x2a.part",     # of another file
        tmp_path / "model.pt.part",               # not one of ours (no leading dot)
        tmp_path / ".model.pt.k3j_9x2a.partial",
    ]
    for path in stale + others:
        path.write_text("x")
    assert stale_temporaries(target) == sorted(stale)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"weights")
    assert target.read_bytes() == b"weights"
    assert all(not p.exists() for p in stale)
    assert all(p.exists() for p in others)


def test_a_failed_write_also_clears_the_old_leftovers(tmp_path):
    target = tmp_path / "curve.csv"
    (tmp_path / ".curve.csv.abcdefgh.part").write_text("x")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert _parts(tmp_path) == [] and not target.exists()


def test_no_folder_yet_means_no_leftovers(tmp_path):
    assert stale_temporaries(tmp_path / "missing" / "x.json") == []


@pytest.mark.bitwise
def test_a_gz_csv_reads_back_as_the_table_and_its_bytes_do_not_depend_on_when_it_was_written(tmp_path,
                                                                                           monkeypatch):
    import gzip
    import time

    import pandas as pd

    from lth.aggregate import write_csv

    df = pd.DataFrame({"trial": [0, 1], "val_loss": [0.30670258789, 0.1]})
    written = []
    for now in (1e9, 2e9):  # gzip stamps the time into its header unless told not to
        monkeypatch.setattr(time, "time", lambda now=now: now)
        write_csv(df, tmp_path / "t.csv.gz")
        written.append((tmp_path / "t.csv.gz").read_bytes())
    assert written[0] == written[1]
    assert gzip.decompress(written[0]) == df.to_csv(index=False, lineterminator="\n").encode()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv.gz"), df)
    write_csv(df, tmp_path / "t.csv")  # any other name: plain CSV
    assert (tmp_path / "t.csv").read_bytes() == gzip.decompress(written[0])
