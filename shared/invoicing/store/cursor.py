"""Page cursors: a position in a newest-first listing.

A cursor is the created_at and the id of the last item shown, "2026-11-24T10:00:00.123Z~in_01J...".
The next page starts just after that position, in whichever listing the cursor is used with (another
customer's, another status'), so any text of this shape is a valid cursor and the API document's
pattern is the whole rule. (A cursor used to be a DynamoDB key in base64: most strings of its
documented shape were refused with a 422.)
"""

from __future__ import annotations

import re

from invoicing.errors import ValidationFailed

CURSOR_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z~[A-Za-z0-9_\-]{1,64}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def position_cursor(created_at: str, item_id: str) -> str:
    return f"{created_at}~{item_id}"


def parse_position(cursor: str | None) -> tuple[str, str] | None:
    """(created_at, id) of a cursor; None for no cursor; a 422 for text that is not a cursor."""
    if not cursor:
        return None
    if not _CURSOR.fullmatch(cursor):
        raise ValidationFailed(
            "starting_after is not a cursor (the next_cursor of a page)", details={"field": "starting_after"}
        )
    created_at, _, item_id = cursor.partition("~")
    return created_at, item_id
