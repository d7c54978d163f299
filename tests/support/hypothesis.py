"""How the long hypothesis runs (make test-slow) choose their examples.

By hand they explore: every run draws new examples, so running them again can find something new.
Under CI (CI=true) they replay the examples derived from each test's name, as Hypothesis' own CI
profile does: a red build is then a finding anyone can reproduce with the same command, never a
roll of the dice. make test's short runs are always derandomized.
"""

from __future__ import annotations

import os

EXPLORE = not os.environ.get("CI")
