"""Keyset ("seek") cursor pagination on ``(created_at, seq)``, newest first.

DRF's ``CursorPagination`` keeps only the first ordering field in its cursor and skips ties with an
OFFSET (capped at 1000). Audit rows tie on ``created_at`` all the time: it is the statement's
time, shared by every row of one INSERT (a workflow transition writes all its rows in one), and
bulk writes produce thousands. ``seq`` numbers rows as they are inserted (``AuditLog.seq``), so
``(created_at, seq)`` is unique and in the order things happened. The cursor holds both and the
next page is ``WHERE (created_at, seq) < (cursor) ORDER BY created_at DESC, seq DESC LIMIT n + 1``:
stable order, no OFFSET, and the same cost for page 1 and page 10,000 (one index range read).

``next`` walks to older rows, ``previous`` back to newer ones. A cursor is opaque to clients; a
malformed one is a 400, and so is one from before ``seq`` (it held the row's UUID). The response
is ``{next, previous, results}`` (no count: counting a tenant's million rows on every page would
cost more than the page).
"""

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import F

# Django 5.2's row-value lookups (made for composite primary keys): on PostgreSQL they compile to
# `(a, b) < (x, y)`, which the planner turns into one index condition (see the EXPLAIN in
# bench/bench_audit.py). If they move in a later Django, an `(a < x) OR (a = x AND b < y)` fallback
# gives the same rows.
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.utils.urls import replace_query_param

# A seq as the cursor carries it: digits only (int() would also take "+1", " 1" and "1_0").
_SEQ = re.compile(r"[0-9]{1,19}")
_SEQ_MAX = 2**63 - 1  # bigint


@dataclass(frozen=True)
class Position:
    created_at: datetime
    seq: int
    # True: the page holds the rows *newer* than this position (a `previous` link).
    backwards: bool = False


class KeysetCursorPagination(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("-created_at", "-seq")
    invalid_cursor_message = "Invalid cursor."
    page_size_query_description = "Rows per page: 50 by default, at most 200."

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.cursor = self.decode_cursor(request)
        backwards = self.cursor is not None and self.cursor.backwards
        if self.cursor is not None:
            key = Tuple(F("created_at"), F("seq"))
            seek = TupleGreaterThan if backwards else TupleLessThan
            queryset = queryset.filter(seek(key, (self.cursor.created_at, self.cursor.seq)))
        order = ("created_at", "seq") if backwards else ("-created_at", "-seq")
        rows = list(queryset.order_by(*order)[: self.page_size + 1])
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if backwards:
            rows.reverse()
        # Rows are never deleted, so the row a cursor points at still exists on the other side.
        self.has_next = more if not backwards else self.cursor is not None
        self.has_previous = more if backwards else self.cursor is not None
        self.page = rows
        return rows

    def get_next_link(self):
        if not self.has_next or not self.page:
            return None
        last = self.page[-1]
        return self._link(Position(last.created_at, last.seq))

    def get_previous_link(self):
        if not self.has_previous or not self.page:
            return None
        first = self.page[0]
        return self._link(Position(first.created_at, first.seq, backwards=True))

    def _link(self, position: Position) -> str:
        return replace_query_param(
            self.base_url, self.cursor_query_param, self.encode_position(position)
        )

    @staticmethod
    def encode_position(position: Position) -> str:
        raw = f"{int(position.backwards)}|{position.created_at.isoformat()}|{position.seq}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode_cursor(self, request) -> Position | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            padded = encoded + "=" * (-len(encoded) % 4)
            backwards, created_at, seq = (
                base64.urlsafe_b64decode(padded.encode("ascii")).decode().split("|")
            )
            moment = datetime.fromisoformat(created_at)
            if moment.tzinfo is None:
                raise ValueError("a cursor's time carries its offset")
            # A cursor from before seq held the row's UUID here: refused like any other.
            if not _SEQ.fullmatch(seq) or int(seq) > _SEQ_MAX:
                raise ValueError("a cursor's seq is a bigint")
            # In UTC: a forged offset PostgreSQL refuses (beyond +-15:59) must not reach it.
            position = Position(
                created_at=moment.astimezone(UTC),
                seq=int(seq),
                backwards={"0": False, "1": True}[backwards],
            )
        except (ValueError, KeyError, UnicodeError, binascii.Error, OverflowError):
            raise ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None
        return position
