"""What every workflow script shares: a log file and one-line errors."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Callable

from .errors import LTHError


def run_job(main: Callable[[Callable[[str], None]], None], log_path: str | None) -> None:
    """Run ``main(log)``; an LTHError ends the job with one line on stderr and in the log."""
    fh = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        fh = open(log_path, "w")

    def log(message: str) -> None:
        if fh is not None:
            print(message, file=fh, flush=True)

    try:
        main(log)
    except LTHError as err:
        log(f"error: {err}")
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:  # a bug, not a user error: keep the traceback in the job's log too
        log(traceback.format_exc().rstrip())
        raise
    finally:
        if fh is not None:
            fh.close()
