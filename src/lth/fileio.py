"""Atomic file writes: a killed job never leaves a file that looks finished.

Everything the pipeline writes goes to a temporary name in the same folder and is renamed
over the final name only once it is complete (``os.replace`` is atomic on POSIX).

A process killed between the write and the rename (SIGKILL, a lost node) leaves its temporary
file ``.NAME.XXXXXXXX.part`` behind; the next write of NAME removes such leftovers of NAME (and
of no other file). Only one writer writes a given file at a time: Snakemake runs one job per
output and keeps two runs out of one folder with its lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_PREFIX, _SUFFIX = ".", ".part"


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporary files that ``atomic_path(path)`` made and never renamed: ``.NAME.<random>.part``
    beside ``path``. The random part has no dot, so ``.NAME.gz.<random>.part`` (another file's)
    does not match."""
    final = Path(path)
    pattern = re.compile(re.escape(f"{_PREFIX}{final.name}.") + r"[^.]+" + re.escape(_SUFFIX))
    try:
        names = os.listdir(final.parent)
    except FileNotFoundError:
        return []
    return sorted(final.parent / n for n in names if pattern.fullmatch(n))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.
    Leftover temporaries of ``path`` from a killed writer are removed first."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(final):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{_PREFIX}{final.name}.", suffix=_SUFFIX, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file with mode 0600; give the result the mode an ordinary open()
        # would (0666 less the umask), so outputs stay readable by the group, e.g. on a cluster.
        os.chmod(tmp_path, 0o666 & ~_umask())
        # The bytes reach the disk before the rename: a crash never leaves an empty or short
        # file under the final name.
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
