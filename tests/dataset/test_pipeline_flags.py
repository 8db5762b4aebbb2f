"""Scrape flags are checked before anything is touched (issue 30 item 11), and ``--ids`` ranges
cost memory by the chunk, not by the ID (item 10)."""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.dataset import cli, database
from core.dataset.ids import IdRange, Shard, visit_order

REPO = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:1/x?id={id}"


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _scrape(tmp: Path, *flags: str) -> tuple[int, list[argparse.Namespace]]:
    """``carvalue-data scrape`` with ``flags``; the stage itself is replaced by a recorder, so an
    accepted command touches nothing either (what it would have run with is returned)."""
    ran: list[argparse.Namespace] = []

    def record(a: argparse.Namespace) -> int:
        ran.append(a)
        return 0

    argv = ["scrape", "--db", str(tmp / "db.sqlite"), "--images", str(tmp / "store"), "--ids", "1000:1010",
            "--no-progress", "--listing-url", URL, *flags]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "_run", record)
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse: usage errors exit 2
            rc = int(e.code or 0)
    return rc, ran


REPRO_CASES = [
    ("--timeout", "0"), ("--timeout", "-5"), ("--timeout", "nan"), ("--timeout", "inf"),
    ("--short-side", "0"), ("--max-photos", "-1"), ("--backoff", "nan"),
    ("--listing-url", "http://127.0.0.1:1/{id}/{x}"), ("--listing-url", "http://127.0.0.1:1/{}"),
    ("--listing-url", "http://127.0.0.1:1/{id"), ("--listing-url", "file:///etc/{id}"),
    ("--listing-url", "http://127.0.0.1:1/nofield"), ("--workers", "0"), ("--rate", "nan"),
    ("--retries", "-1"), ("--quality", "0"), ("--backoff-max", "inf"), ("--max-retry-after", "-1"),
]


@pytest.mark.parametrize(("flag", "value"), REPRO_CASES)
def test_the_repro_scripts_bad_flags_are_usage_errors_that_touch_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str) -> None:
    existing = tmp_path / "db.sqlite"
    database.connect(existing).close()
    before = _digest(existing)
    rc, ran = _scrape(tmp_path, f"{flag}={value}")
    assert rc == 2 and not ran
    assert _digest(existing) == before and not (tmp_path / "store").exists()
    err = capsys.readouterr().err
    assert f"argument {flag}:" in err and "Traceback" not in err


def test_the_documented_defaults_and_sane_values_are_accepted(tmp_path: Path) -> None:
    rc, ran = _scrape(tmp_path, "--timeout=0.5", "--backoff=0", "--short-side=32", "--max-photos=1", "--rate=0",
                      "--listing-url=https://example.com/v?listingId={id}&x={{y}}")
    assert rc == 0 and len(ran) == 1
    config = cli.scrape_config(ran[0])
    assert config.policy.timeout_s == 0.5 and config.max_photos == 1 and config.short_side == 32
    assert config.listing_url.format(id=5) == "https://example.com/v?listingId=5&x={y}"
    assert not (tmp_path / "db.sqlite").exists()


NUMERIC = {  # flag: the accepted interval, as the help says
    "--timeout": (0.0, 3600.0, True), "--backoff": (0.0, 3600.0, False), "--backoff-max": (0.0, 86400.0, False),
    "--max-retry-after": (0.0, 86400.0, False), "--rate": (0.0, 10000.0, False),
    "--retries": (0, 100, False), "--short-side": (32, 4096, False), "--quality": (1, 100, False),
    "--max-photos": (1, 100_000, False), "--workers": (1, 256, False), "--max-same-error": (1, 1_000_000, False),
}
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-10, max_value=5000).map(lambda x: f"{x:g}"),
    st.integers(min_value=-10**6, max_value=10**6).map(str),
    st.sampled_from(["nan", "inf", "-inf", "NaN", "1e400", "0x10", "", " 5", "1_0", "٣", "--"]),
    st.text(max_size=6),
)


@pytest.mark.parametrize("flag", ["--backoff", "--retries", "--ids", "--db", "--listing-url"])
def test_an_option_given_as_two_dashes_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       flag: str) -> None:
    """argparse hands ``--flag=--`` an empty list without calling the option's type (hypothesis
    found ``--backoff=--`` running with a list for a number)."""
    rc, ran = _scrape(tmp_path, f"{flag}=--")
    assert rc == 2 and not ran and not list(tmp_path.iterdir())
    assert f"argument {flag}: expected one value" in capsys.readouterr().err


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flag=st.sampled_from(sorted(NUMERIC)), value=VALUES)
def test_any_scrape_flag_value_is_a_usage_error_or_a_sane_setting(flag: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rc, ran = _scrape(tmp, f"{flag}={value}")
        assert sorted(p.name for p in tmp.iterdir()) == []  # nothing created, accepted or not
    assert rc in (0, 2)
    if rc == 2:
        assert not ran
        return
    lo, hi, lo_open = NUMERIC[flag]
    got = getattr(ran[0], flag[2:].replace("-", "_"))
    assert math.isfinite(got) and lo <= got <= hi and not (lo_open and got == lo)
    cli.scrape_config(ran[0])  # the stage's own checks agree


@settings(max_examples=200, deadline=None)
@given(template=st.text(alphabet="{}id:/x.!0r", max_size=12).map(lambda t: "http://h/" + t))
def test_any_listing_url_template_is_refused_or_formats(template: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        rc, ran = _scrape(Path(d), f"--listing-url={template}")
    assert rc in (0, 2)
    if rc == 0:
        assert template.format(id=7)  # never a KeyError, IndexError or ValueError in the run


# ---- item 10: --ids ranges are visited lazily ------------------------------------------------------

def test_the_visit_order_is_a_permutation_split_exactly_by_shards() -> None:
    for n in (1, 2, 3, 7, 64, 65, 1000):
        ids = IdRange(500, 500 + n)
        parts = [visit_order(ids, 11, Shard(i, 3)).to_array() for i in range(3)]
        assert sorted(np.concatenate(parts).tolist()) == list(range(500, 500 + n))
        for i, part in enumerate(parts):
            assert len(visit_order(ids, 11, Shard(i, 3))) == len(part)
            assert visit_order(ids, 11, Shard(i, 3)).contains(np.concatenate(parts)).sum() == len(part)
    chunks = list(visit_order(IdRange(0, 1000), 2).chunks(size=64))
    assert len(chunks) == 16 and np.array_equal(np.concatenate(chunks), visit_order(IdRange(0, 1000), 2).to_array())


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))


BILLION = """
from core.dataset.ids import IdRange, Shard, visit_order
order = visit_order(IdRange(0, 1_000_000_000), 0, Shard(1, 3))
assert len(order) == 333_333_333
first = next(order.chunks())
assert len(first) == 65_536 and first.min() >= 0 and first.max() < 1_000_000_000
assert order.contains(first).all()
assert not visit_order(IdRange(0, 1_000_000_000), 0, Shard(0, 3)).contains(first).any()
print("ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS")
def test_a_billion_ids_cost_a_chunk_not_16_bytes_each() -> None:
    """In a subprocess under a 1.5 GB address-space limit: the old order held 16 GB here."""
    proc = subprocess.run([sys.executable, "-c", BILLION], cwd=REPO, capture_output=True, text=True, timeout=60,
                          preexec_fn=_limit_memory, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and a closed loopback port")
def test_scrape_of_the_largest_ids_range_starts_in_bounded_memory(tmp_path: Path) -> None:
    """The repro's case: before, 0:300000000 held 4.7 GB before the first request (here it would
    fail under a 1.5 GB address-space limit); the listing URL is a closed port, so the run stops
    itself after 25 identical errors (exit 3)."""
    cmd = [sys.executable, "-m", "core.dataset.cli", "scrape", "--db", str(tmp_path / "db.sqlite"),
           "--images", str(tmp_path / "s"), "--ids", "0:1000000000", "--listing-url", URL, "--no-progress",
           "--retries", "0", "--workers", "2"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "25 listings in a row failed" in proc.stderr
