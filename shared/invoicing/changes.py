"""The shape of a partial update (PATCH) command: shared by the use cases, not a use case itself.

A command is a frozen dataclass of the fields an update may change, each defaulting to UNSET. A field
left UNSET is not part of the change; None clears it where the resource allows (what null means per
field is decided once, in the API's models: functions/api/schemas.py `Patch`). `given()` is the change.
Building a command from anything but its fields fails at once (a TypeError for a field it has not).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, Final


class Unset(Enum):
    UNSET = "unset"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True)
class Changes:
    def given(self) -> dict[str, Any]:
        """The fields set, in declaration order."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not UNSET}
