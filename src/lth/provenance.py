"""What produced a set of results: config, package versions, data checksums, code version."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata

from .experiment import code_version

PACKAGES = ("torch", "torchvision", "snakemake", "numpy", "pandas", "scipy", "matplotlib", "pyyaml")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(repo_dir: str | os.PathLike) -> dict:
    """Commit and whether the tree had uncommitted changes; empty when not a git checkout."""
    try:
        commit = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": bool(dirty)}


def collect(config: dict, checksums_path: str | os.PathLike | None, repo_dir: str | os.PathLike,
            result_code_versions: set[str] | None = None) -> dict:
    data = None
    if checksums_path is not None and os.path.exists(checksums_path):
        with open(checksums_path) as fh:
            data = json.load(fh)
    return {
        "config": dict(sorted(config.items())),
        "packages": {name: _version(name) for name in PACKAGES},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "data": data,
        "git": git_state(repo_dir),
        "code_version": code_version(),
        "result_code_versions": sorted(result_code_versions or []),
    }
