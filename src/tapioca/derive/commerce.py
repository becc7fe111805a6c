"""Transactions, their line items, carts and refunds, derived incrementally from new
events (metrics.md, E-commerce metrics; derive.md, Transactions and carts).

For the events in a new ingest range (seq in (last, upto]), after the sessions:

- purchases: per (site, transaction id, else event id), the first new purchase event (by
  time, then event id) replaces the stored transaction when it is earlier than the
  stored one's event, or makes a new one. The stored transaction is always the first of
  every purchase event seen so far, whatever order they arrived in, and a range run
  again changes nothing. Its revenue, currency and line items come from that event
  alone (model/commerce.py);
- carts: each new ``view_cart`` event; refunds: each new ``refund`` event;
- the session dimensions of every transaction and cart whose session was replaced by
  this run (derive/sessions.py leaves the spans it replaced), new ones included, are
  read again from the session that holds its event: a late page view that becomes the
  first of a purchase's session changes the purchase's landing page and channel.

Bot events make nothing. The SQL is the dialect PostgreSQL and DuckDB share; the money
and items of each event are read in Python (one statement per table for all of them).
"""

from __future__ import annotations

from typing import Any

from tapioca.derive.commerce_rollups import DIRTY, commerce_rollup_steps
from tapioca.derive.runner import BulkInsert, Step, Transform, temp_table
from tapioca.derive.sessions import BOUNDS, HOUR, KEYS
from tapioca.model.commerce import (
    CART,
    EVENT_COLUMNS,
    FACT_TABLES,
    REFUNDS,
    SESSION_COLUMNS,
    TXN,
    TXN_ITEM,
    amount,
    currency_of,
    lines,
    quantity,
)
from tapioca.model.event import PURCHASE, REFUND, VIEW_CART
from tapioca.storage.base import Rows

_EVENT = ", ".join(EVENT_COLUMNS)
_NEW = "seq > $1 AND seq <= $2 AND NOT is_bot AND event_type = '{kind}'"
_KEY = "coalesce(transaction_id, event_id)"

# The first new purchase of each transaction, where it is earlier than the stored one.
_WINNERS = f"""
SELECT p.* FROM (
    SELECT site_id, {_KEY} AS transaction_id, event_id, ts, visitor_id,
           session_id AS event_session_id, revenue, currency, items, {_EVENT},
           row_number() OVER (PARTITION BY site_id, {_KEY} ORDER BY ts, event_id) AS n
    FROM event WHERE {_NEW.format(kind=PURCHASE)}
) AS p
LEFT JOIN {TXN} t ON t.site_id = p.site_id AND t.transaction_id = p.transaction_id
WHERE p.n = 1 AND (t.site_id IS NULL OR p.ts < t.ts OR (p.ts = t.ts AND p.event_id < t.event_id))"""


def _replaced(table: str, key: str, temp: str) -> Step:
    return (f"DELETE FROM {table} USING {temp} p "
            f"WHERE {table}.site_id = p.site_id AND {table}.{key} = p.{key}", [])  # fmt: skip


_FACT = (("site_id", "text"), ("ts", "timestamptz"), ("visitor_id", "text"),
         ("event_session_id", "text"), *((c, "text") for c in EVENT_COLUMNS))  # fmt: skip
_MONEY = "numeric(38, 4)"
_TXNS = BulkInsert(TXN, (
    ("transaction_id", "text"), ("event_id", "text"), *_FACT,
    ("revenue", _MONEY), ("currency", "text"), ("items", "bigint"),
))  # fmt: skip
_LINES = BulkInsert(TXN_ITEM, (
    ("site_id", "text"), ("transaction_id", "text"), ("line", "integer"), ("ts", "timestamptz"),
    ("sku", "text"), ("name", "text"), ("category", "text"), ("price", _MONEY),
    ("quantity", "bigint"), ("currency", "text"),
))  # fmt: skip
_CARTS = BulkInsert(CART, (("event_id", "text"), *_FACT, ("value", _MONEY), ("items", "bigint"),
                           ("currency", "text")))  # fmt: skip
_REFUNDS = BulkInsert(REFUNDS, (("site_id", "text"), ("event_id", "text"),
                                ("transaction_id", "text"), ("ts", "timestamptz"),
                                ("amount", _MONEY), ("currency", "text")))  # fmt: skip


def _purchases(_key: tuple[Any, ...], rows: Rows) -> list[tuple[BulkInsert, Rows]]:
    txns, items = [], []
    for tx, event_id, site_id, ts, visitor, session, *rest in rows:
        dims = rest[: len(EVENT_COLUMNS)]
        revenue, sent_currency, text = rest[len(EVENT_COLUMNS) :]
        found = lines(text)
        currency = currency_of(sent_currency)
        txns.append((tx, event_id, site_id, ts, visitor, session, *dims,
                     amount(revenue, found), currency, quantity(found)))  # fmt: skip
        items += [(site_id, tx, n, ts, line.sku, line.name, line.category, line.price,
                   line.quantity, currency) for n, line in enumerate(found)]  # fmt: skip
    return [(_TXNS, txns), (_LINES, items)]


def _carts(_key: tuple[Any, ...], rows: Rows) -> list[tuple[BulkInsert, Rows]]:
    carts = []
    for event_id, site_id, ts, visitor, session, *rest in rows:
        dims = rest[: len(EVENT_COLUMNS)]
        revenue, sent_currency, text = rest[len(EVENT_COLUMNS) :]
        found = lines(text)
        carts.append((event_id, site_id, ts, visitor, session, *dims, amount(revenue, found),
                      quantity(found), currency_of(sent_currency)))  # fmt: skip
    return [(_CARTS, carts)]


def _refunds(_key: tuple[Any, ...], rows: Rows) -> list[tuple[BulkInsert, Rows]]:
    """A refund's amount: its revenue, else its items' total; none (the whole transaction)
    when it has neither."""
    out = []
    for site_id, event_id, tx, ts, revenue, sent_currency, text in rows:
        found = lines(text)
        given = amount(revenue, found) if revenue is not None or found else None
        out.append((site_id, event_id, tx, ts, given, currency_of(sent_currency)))
    return [(_REFUNDS, out)]


_PURCHASE_ROWS = (
    f"SELECT p.transaction_id, p.event_id, p.site_id, p.ts, p.visitor_id, p.event_session_id, "
    f"{', '.join(f'p.{c}' for c in EVENT_COLUMNS)}, p.revenue, p.currency, p.items "
    f"FROM derive_purchase p ORDER BY p.ts, p.site_id, p.transaction_id"  # stored in time order
)


def _new_rows(kind: str, columns: str) -> str:
    return f"SELECT {columns} FROM event e WHERE {_NEW.format(kind=kind)}"


_CART_ROWS = _new_rows(
    VIEW_CART,
    "e.event_id, e.site_id, e.ts, e.visitor_id, e.session_id, "
    + ", ".join(f"e.{c}" for c in EVENT_COLUMNS)
    + ", e.revenue, e.currency, e.items",
)
_REFUND_ROWS = _new_rows(
    REFUND, "e.site_id, e.event_id, e.transaction_id, e.ts, e.revenue, e.currency, e.items"
)
_SET = ", ".join(["session_id = s.session_id", *(f"{c} = s.{c}" for c in SESSION_COLUMNS)])


def _refresh(table: str) -> list[Step]:
    """The session dimensions of the facts in every replaced session span (derived
    sessions: BOUNDS) and client session (KEYS)."""
    auto = f"""
    UPDATE {table} SET {_SET} FROM session s, {BOUNDS} b
    WHERE {table}.event_session_id IS NULL
      AND b.site_id = {table}.site_id AND b.visitor_id = {table}.visitor_id
      AND {table}.ts >= b.lo AND {table}.ts <= b.hi
      AND s.site_id = {table}.site_id AND s.visitor_id = {table}.visitor_id
      AND NOT s.client_defined AND {table}.ts >= s.started_at AND {table}.ts <= s.ended_at"""
    client = f"""
    UPDATE {table} SET {_SET} FROM session s, {KEYS} k
    WHERE k.site_id = {table}.site_id AND k.session_id = {table}.event_session_id
      AND s.site_id = k.site_id AND s.session_id = k.session_id AND s.client_defined"""
    return [(auto, []), (client, [])]


def _new_events(kind: str, seqs: list[int]) -> list[Step]:
    """A temp table of the (site, event id) of the new events of ``kind``."""
    return temp_table(f"derive_{kind}", f"SELECT site_id, event_id FROM event "
                      f"WHERE {_NEW.format(kind=kind)}", seqs)  # fmt: skip


# The transactions a purchase replaces (their hours and users are recomputed too).
_GONE = f"""
SELECT t.site_id, t.transaction_id, t.ts, t.visitor_id, t.session_id FROM {TXN} t
JOIN derive_purchase p ON p.site_id = t.site_id AND p.transaction_id = t.transaction_id"""
# The users whose transactions' order, or sessions, may have changed: those of new and
# replaced transactions, of replaced session spans, of redone client sessions.
_BUYERS = f"""
SELECT DISTINCT site_id, visitor_id FROM (
    SELECT site_id, visitor_id FROM derive_purchase
    UNION ALL SELECT site_id, visitor_id FROM derive_gone
    UNION ALL SELECT t.site_id, t.visitor_id FROM {TXN} t JOIN {BOUNDS} b
        ON b.site_id = t.site_id AND b.visitor_id = t.visitor_id AND t.ts >= b.lo AND t.ts <= b.hi
    UNION ALL SELECT t.site_id, t.visitor_id FROM {TXN} t JOIN {KEYS} k
        ON k.site_id = t.site_id AND k.session_id = t.event_session_id
) AS v"""
# ... and the sessions their transactions are in, or were in before being replaced.
_SESSIONS = f"""
SELECT DISTINCT site_id, session_id FROM (
    SELECT t.site_id, t.session_id FROM {TXN} t
    JOIN derive_buyers b ON b.site_id = t.site_id AND b.visitor_id = t.visitor_id
    UNION ALL SELECT site_id, session_id FROM derive_gone
) AS s WHERE session_id IS NOT NULL"""


def _previous(column: str, partition: str, scope: str) -> Step:
    """Set ``column``: the time of the transaction before each one (by time, then id) in
    its ``partition``, for the transactions of the partitions in ``scope``."""
    sql = f"""
    UPDATE {TXN} SET {column} = x.prev FROM (
        SELECT t.site_id, t.transaction_id,
               lag(t.ts) OVER (PARTITION BY t.site_id, t.{partition}
                               ORDER BY t.ts, t.transaction_id) AS prev
        FROM {TXN} t JOIN {scope} a ON a.site_id = t.site_id AND a.{partition} = t.{partition}
    ) AS x
    WHERE {TXN}.site_id = x.site_id AND {TXN}.transaction_id = x.transaction_id
      AND {TXN}.{column} IS DISTINCT FROM x.prev"""
    return (sql, [])


def _mark(select: str) -> Step:
    """Mark the (site, UTC hour) of the rows of ``select`` (columns site_id, ts) for the
    commerce rollups (derive/commerce_rollups.py)."""
    return (f"INSERT INTO {DIRTY} (site_id, hour) SELECT DISTINCT site_id, "
            f"{HOUR.format(ts='ts')} FROM ({select}) AS m ON CONFLICT DO NOTHING", [])  # fmt: skip


_TEMPS = ("derive_purchase", "derive_gone", "derive_buyers", "derive_txn_sessions",
          f"derive_{VIEW_CART}", f"derive_{REFUND}")  # fmt: skip


def commerce_steps(last: int, upto: int) -> list[Step]:
    """Steps for the new events' transactions, carts and refunds, and the commerce
    rollups of every hour they changed; they run after the session steps and before
    their temp tables go (derive/sessions.py)."""
    seqs = [last, upto]
    kinds = ", ".join(f"'{kind}'" for kind in (PURCHASE, VIEW_CART, REFUND))
    # refunds worth their transaction's revenue, or in its currency, follow its changes
    follows = (f"SELECT r.site_id, r.ts FROM {REFUNDS} r JOIN derive_purchase p "
               "ON p.site_id = r.site_id AND p.transaction_id = r.transaction_id "
               "WHERE r.amount IS NULL OR r.currency IS NULL")  # fmt: skip
    return [
        *temp_table("derive_purchase", _WINNERS, seqs),
        *temp_table("derive_gone", _GONE, []),
        _mark("SELECT site_id, ts FROM derive_gone"),
        _mark(follows),
        _replaced(TXN_ITEM, "transaction_id", "derive_purchase"),
        _replaced(TXN, "transaction_id", "derive_purchase"),
        Transform(_PURCHASE_ROWS, (), 0, _purchases),
        *_new_events(VIEW_CART, seqs),
        _replaced(CART, "event_id", f"derive_{VIEW_CART}"),
        Transform(_CART_ROWS, tuple(seqs), 0, _carts),
        *_new_events(REFUND, seqs),
        _replaced(REFUNDS, "event_id", f"derive_{REFUND}"),
        Transform(_REFUND_ROWS, tuple(seqs), 0, _refunds),
        (mark_dirty_sql(kinds), seqs),
        *(step for table in FACT_TABLES for step in _refresh(table)),
        *temp_table("derive_buyers", _BUYERS, []),
        *temp_table("derive_txn_sessions", _SESSIONS, []),
        _previous("prev_buyer_ts", "visitor_id", "derive_buyers"),
        _previous("prev_session_ts", "session_id", "derive_txn_sessions"),
        _mark(f"SELECT t.site_id, t.ts FROM {TXN} t JOIN derive_buyers b "
              "ON b.site_id = t.site_id AND b.visitor_id = t.visitor_id"),
        _mark(f"SELECT t.site_id, t.ts FROM {TXN} t JOIN derive_txn_sessions s "
              "ON s.site_id = t.site_id AND s.session_id = t.session_id"),
        *commerce_rollup_steps(),
        *((f"DROP TABLE {temp}", []) for temp in _TEMPS),
    ]  # fmt: skip


def mark_dirty_sql(kinds: str) -> str:
    """Mark the hours of the new events of ``kinds`` ($1, $2: the seq range)."""
    return (f"INSERT INTO {DIRTY} (site_id, hour) SELECT DISTINCT site_id, {HOUR.format(ts='ts')} "
            f"FROM event WHERE seq > $1 AND seq <= $2 AND NOT is_bot AND event_type IN ({kinds}) "
            "ON CONFLICT DO NOTHING")  # fmt: skip
