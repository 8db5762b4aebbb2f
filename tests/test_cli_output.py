"""Output that cannot be written (issue 30 item 13): a closed pipe (``| true``, ``| head``), a full
device (``> /dev/full``) or a closed standard output gives one line on stderr and the documented
exit code (``carvalue predict``: 3; ``carvalue-data``: 4), never a traceback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.dataset import database
from core.output import OutputError, write

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "samples" / "synthetic-sedan.jpg"
PREDICT = [sys.executable, "-c", "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))"]
DATA = [sys.executable, "-m", "core.dataset.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _broken_pipe(cmd: list[str]) -> tuple[int, str]:
    """Run ``cmd`` with its stdout a pipe whose reader has gone (as ``cmd | true``)."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run(cmd, cwd=REPO, stdout=w, stderr=subprocess.PIPE, text=True, timeout=120, env=ENV)
    finally:
        os.close(w)
    return proc.returncode, proc.stderr


def _full_device(cmd: list[str]) -> tuple[int, str]:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(cmd, cwd=REPO, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, env=ENV)
    return proc.returncode, proc.stderr


def _closed_stdout(cmd: list[str]) -> tuple[int, str]:
    proc = subprocess.run(cmd, cwd=REPO, stdout=None, stderr=subprocess.PIPE, text=True, timeout=120, env=ENV,
                          preexec_fn=lambda: os.close(1))
    return proc.returncode, proc.stderr


WAYS = {"broken pipe": _broken_pipe, "full device": _full_device, "closed stdout": _closed_stdout}
needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@needs_dev_full
@pytest.mark.parametrize("way", sorted(WAYS))
def test_predict_into_an_output_that_refuses_it(way: str) -> None:
    rc, err = WAYS[way]([*PREDICT, "--json", "--crop", "full", str(SAMPLE), str(SAMPLE)])
    assert rc == 3
    assert _one_line(err).startswith("carvalue: cannot write the results")


@needs_dev_full
@pytest.mark.parametrize("way", sorted(WAYS))
def test_data_stats_into_an_output_that_refuses_it(tmp_path: Path, way: str) -> None:
    db = tmp_path / "db.sqlite"
    database.connect(db).close()
    rc, err = WAYS[way]([*DATA, "stats", "--db", str(db)])
    assert rc == 4
    assert _one_line(err).startswith("carvalue-data stats: error: cannot write the results")


class _Refusing(io.StringIO):
    def __init__(self, error: OSError) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise self.error


def test_write_turns_output_errors_into_one_line() -> None:
    for error, reason in ((BrokenPipeError(32, "Broken pipe"), "the reader closed the pipe"),
                          (OSError(28, "No space left on device"), "No space left on device")):
        with pytest.raises(OutputError, match=reason):
            write(_Refusing(error), "x")
    with pytest.raises(OutputError, match="standard output is closed"):
        write(None, "x")
    closed = io.StringIO()
    closed.close()
    with pytest.raises(OutputError, match="closed file"):
        write(closed, "x")
    ok = io.StringIO()
    write(ok, "line")
    assert ok.getvalue() == "line\n"
