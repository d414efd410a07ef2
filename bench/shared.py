"""Where the team's shared data lives: one setting for the bench and the tests.

`HER2CDS_SHARED_DIR` names the folder (captures/, data/synthea-mcode/, cds-hooks-sandbox/);
without it, `../shared` beside the repository, or beside the folder holding it (a git worktree
under wt/). What needs the folder skips, or says what is missing, when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "HER2CDS_SHARED_DIR"
ROOT = Path(__file__).resolve().parent.parent


def find_shared() -> Path:
    """The shared folder: $HER2CDS_SHARED_DIR, else the first ../shared found (may not exist)."""
    env = os.environ.get(ENV)
    if env:
        return Path(env)
    candidates = [ROOT.parent / "shared", ROOT.parent.parent / "shared"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def missing(path: Path) -> str:
    """One sentence for a skip or an error: which path is absent and how to point at it."""
    return f"{path} not available (set {ENV} to the shared folder)"
