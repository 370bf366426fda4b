"""run_job, what every workflow script runs in: its log, one-line user errors, kept tracebacks."""

from __future__ import annotations

import pytest

from lth.errors import LTHError
from lth.jobs import run_job


def test_a_job_writes_its_log(tmp_path):
    run_job(lambda log: log("hello"), str(tmp_path / "logs" / "job.log"))
    assert (tmp_path / "logs" / "job.log").read_text() == "hello\n"


def test_a_user_error_is_one_line_on_stderr_and_in_the_log(tmp_path, capsys):
    def main(log):
        log("started")
        raise LTHError("data_source /x: missing train-images-idx3-ubyte")

    with pytest.raises(SystemExit) as info:
        run_job(main, str(tmp_path / "job.log"))
    assert info.value.code == 1
    assert capsys.readouterr().err == "error: data_source /x: missing train-images-idx3-ubyte\n"
    assert (tmp_path / "job.log").read_text() == "started\nerror: data_source /x: missing train-images-idx3-ubyte\n"


def test_a_bug_keeps_its_traceback_in_the_log(tmp_path):
    def main(log):
        return {}["no such key"]

    with pytest.raises(KeyError):
        run_job(main, str(tmp_path / "job.log"))
    text = (tmp_path / "job.log").read_text()
    assert text.startswith("Traceback") and "KeyError: 'no such key'" in text
