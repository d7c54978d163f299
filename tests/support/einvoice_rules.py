"""Where the official e-invoice rules are: `../shared/einvoice` beside the repository (never copied into it).

In a git worktree the folder sits beside the main checkout, so that is looked at too. With CI=true a
missing folder is a failure, never a skip: the proof of validity must not silently vanish from CI.
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class RulesMissing(RuntimeError):
    pass


def _candidates() -> list[Path]:
    out = []
    if os.environ.get("EINVOICE_RULES_DIR"):
        out.append(Path(os.environ["EINVOICE_RULES_DIR"]))
    out.append(ROOT.parent / "shared" / "einvoice")
    try:  # a worktree: the main checkout's folder, whose sibling holds shared/
        common = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        out.append(Path(common).parent.parent / "shared" / "einvoice")
    except (OSError, subprocess.SubprocessError):
        pass
    return out


@lru_cache(maxsize=1)
def rules_dir() -> Path:
    for candidate in _candidates():
        if (candidate / "en16931" / "ubl" / "EN16931-UBL-validation.xslt").is_file():
            return candidate
    raise RulesMissing(
        "the official e-invoice rules are not at ../shared/einvoice (looked in: "
        + ", ".join(str(c) for c in _candidates())
        + "); set EINVOICE_RULES_DIR or lay them beside the repository"
    )


def require_rules() -> Path:
    """For tests: the rules folder; without it a skip on a laptop, a failure under CI=true."""
    import pytest

    try:
        return rules_dir()
    except RulesMissing as missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true and {missing}", pytrace=False)
        pytest.skip(str(missing))
