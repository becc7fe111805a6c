"""Hourly rollups of the commerce reports, recomputed for the (site, UTC hour) pairs
marked in ``commerce_dirty`` (derive/commerce.py marks every hour whose transactions,
carts or refunds it changed):

- ``rollup_sales_hour`` and ``rollup_commerce_hour``: per site, hour and currency, the
  transactions' count, revenue and items and how many of them are the first of their
  user and of their session, with the carts and refunds (the first: the site's total,
  dim ``''``), or per dimension value (the second);
  ``rollup_commerce_day``: the same per UTC day, summed from the hours;
- ``rollup_product_hour``: per site, hour, sku and currency, the quantity, revenue and
  transactions of the line items, and the name of the latest one with a name;
  ``rollup_product_day``: the same per UTC day, from the hours (a range reads its whole
  UTC days there, its edge hours here; a product's name is the latest of its days).

Rows are replaced, never added to, so a re-run changes nothing and a rebuild from events
gives the same rows. The SQL is the dialect PostgreSQL and DuckDB share.
"""

from __future__ import annotations

from tapioca.derive.rollups import IN_ORDER
from tapioca.derive.runner import Step, temp_table
from tapioca.model.commerce import CART, FACT_DIMENSIONS, REFUNDS, TXN, TXN_ITEM, fact_column
from tapioca.model.dimensions import Dimension

DIRTY = "commerce_dirty"
TABLES = ["rollup_sales_hour", "rollup_commerce_hour", "rollup_commerce_day",
          "rollup_product_hour", "rollup_product_day", DIRTY]  # fmt: skip
_HOUR = "d.hour + INTERVAL '1 hour'"
_MONEY = "CAST({} AS numeric(38, 4))"


def _in_dirty_hours(table: str, alias: str) -> str:
    """FROM the rows of ``table`` (as ``alias``) in a dirty hour, one index range each
    (OFFSET 0: PostgreSQL keeps the lateral query, not a scan of the whole table)."""
    return (
        f"{DIRTY} d CROSS JOIN LATERAL (SELECT * FROM {table} WHERE {table}.site_id = d.site_id "
        f"AND {table}.ts >= d.hour AND {table}.ts < {_HOUR} OFFSET 0) AS {alias}"
    )


_COLUMNS = ("site_id, hour, dim, value, currency, transactions, revenue, items, new_buyers, "
            "new_sessions, carts, cart_value, cart_items, refunds")  # fmt: skip
_NO_SALES = f"0, {_MONEY.format(0)}, 0, 0, 0"
_NO_CARTS = f"0, {_MONEY.format(0)}, 0"


def _sales_branch(dim: Dimension | None) -> str:
    """The transactions of the dirty hours per value of ``dim`` (None: the total)."""
    if dim is None:
        name, value, group = "", "CAST(NULL AS VARCHAR)", ""
    else:
        column = fact_column(TXN, dim)
        group = "" if dim is Dimension.EVENT_TYPE else f", {column}"  # one value: no group
        name, value = dim.value, f"CAST({column} AS VARCHAR)"
    return (
        f"SELECT d.site_id, d.hour, '{name}', {value}, t.currency, count(*), "
        f"{_MONEY.format('sum(t.revenue)')}, sum(t.items), "
        "count(*) FILTER (WHERE t.prev_buyer_ts IS NULL), "
        f"count(*) FILTER (WHERE t.prev_session_ts IS NULL), {_NO_CARTS}, {_MONEY.format(0)} "
        f"FROM {_in_dirty_hours(TXN, 't')} GROUP BY d.site_id, d.hour, t.currency{group}"
    )


_CARTS = (
    f"SELECT d.site_id, d.hour, '', CAST(NULL AS VARCHAR), c.currency, {_NO_SALES}, count(*), "
    f"{_MONEY.format('sum(c.value)')}, sum(c.items), {_MONEY.format(0)} "
    f"FROM {_in_dirty_hours(CART, 'c')} GROUP BY d.site_id, d.hour, c.currency"
)
# A refund without an amount gives back its transaction's revenue; without a currency it is
# in its transaction's (none: the site's).
_REFUND_CURRENCY = "coalesce(r.currency, t.currency)"
_REFUNDS = (
    f"SELECT d.site_id, d.hour, '', CAST(NULL AS VARCHAR), {_REFUND_CURRENCY}, {_NO_SALES}, "
    f"{_NO_CARTS}, {_MONEY.format('sum(coalesce(r.amount, t.revenue, 0))')} "
    f"FROM {_in_dirty_hours(REFUNDS, 'r')} "
    f"LEFT JOIN {TXN} t ON t.site_id = r.site_id AND t.transaction_id = r.transaction_id "
    f"GROUP BY d.site_id, d.hour, {_REFUND_CURRENCY}"
)
_SUMS = ", ".join(f"sum({c})" for c in _COLUMNS.split(", ")[5:])


def _insert(table: str, branches: list[str]) -> str:
    """Rows of ``table``: the sums of the branches' rows per key."""
    return (
        f"INSERT INTO {table} ({_COLUMNS}) SELECT site_id, hour, dim, value, currency, {_SUMS} "
        f"FROM ({' UNION ALL '.join(branches)}) AS parts ({_COLUMNS}) "
        f"GROUP BY site_id, hour, dim, value, currency{IN_ORDER}"
    )


# The site's rows (transactions, carts, refunds) apart from the dimensions' rows: the
# reports that want the total read a table of one row per hour and currency.
SALES_HOUR = "rollup_sales_hour"
_TOTALS = _insert(SALES_HOUR, [_sales_branch(None), _CARTS, _REFUNDS])
_BY_DIMENSION = _insert("rollup_commerce_hour", [_sales_branch(d) for d in FACT_DIMENSIONS])
_PRODUCTS = f"""
INSERT INTO rollup_product_hour (site_id, hour, sku, currency, quantity, revenue, transactions)
SELECT site_id, hour, sku, currency, sum(q), {_MONEY.format("sum(r)")}, count(*) FROM (
    SELECT d.site_id, d.hour, i.sku, i.currency, i.transaction_id, sum(i.quantity) AS q,
           coalesce(sum(i.price * i.quantity), 0) AS r
    FROM {_in_dirty_hours(TXN_ITEM, "i")}
    GROUP BY d.site_id, d.hour, i.sku, i.currency, i.transaction_id
) AS lines GROUP BY site_id, hour, sku, currency{IN_ORDER}"""


def _latest_names(table: str, period: str, source: str, a: str, keys: tuple[str, ...]) -> str:
    """Set the name of the rows of ``table`` per ``period`` (hour or day), sku and
    currency: that of the latest named row of ``source`` (alias ``a``, grouped by the
    marked periods ``d``), ``keys`` being its time, transaction and line columns."""
    ts, tx, line = (f"{a}.{k}" for k in keys)
    return f"""
UPDATE {table} SET name = x.name, name_ts = x.ts, name_tx = x.tx, name_line = x.line
FROM (
    SELECT d.site_id, d.{period}, {a}.sku, {a}.currency, {a}.name, {ts} AS ts, {tx} AS tx,
           {line} AS line,
           row_number() OVER (PARTITION BY d.site_id, d.{period}, {a}.sku, {a}.currency
                              ORDER BY {ts} DESC, {tx} DESC, {line} DESC) AS n
    FROM {source} WHERE {a}.name IS NOT NULL
) AS x
WHERE x.n = 1 AND {table}.site_id = x.site_id AND {table}.{period} = x.{period}
  AND {table}.sku = x.sku AND {table}.currency IS NOT DISTINCT FROM x.currency"""


_PRODUCT_NAMES = _latest_names("rollup_product_hour", "hour", _in_dirty_hours(TXN_ITEM, "i"),
                               "i", ("ts", "transaction_id", "line"))  # fmt: skip
_UTC_DAY = "CAST(hour AT TIME ZONE 'UTC' AS DATE)"
_DAY_START = "CAST(d.day AS TIMESTAMP) AT TIME ZONE 'UTC'"
# The hourly rows of a marked UTC day ``d``: its hour range (an index range when the days
# are few) and the same day as an equality (a hash join on site and day when they are
# many: on the site alone, each day's join reread every hour of the site, 2.4M rows
# filtered out for 90 days).
_IN_DAY = (f"r.site_id = d.site_id AND CAST(r.hour AT TIME ZONE 'UTC' AS DATE) = d.day "
           f"AND r.hour >= {_DAY_START} AND r.hour < {_DAY_START} + INTERVAL '1 day'")  # fmt: skip
_DAYS = temp_table(
    "derive_utc_days", f"SELECT DISTINCT site_id, {_UTC_DAY} AS day FROM {DIRTY}", []
)


def _day_rows(hours: str, days: str, keys: tuple[str, ...], sums: tuple[str, ...]) -> list[Step]:
    """Replace the rows of ``days`` (per UTC day) of the marked hours' days: the sums of
    their hourly rows in ``hours``, per ``keys``."""
    by = ", ".join(f"r.{k}" for k in keys)
    insert = f"""
    INSERT INTO {days} (site_id, day, {", ".join(keys)}, {", ".join(sums)})
    SELECT d.site_id, d.day, {by}, {", ".join(f"sum(r.{c})" for c in sums)}
    FROM derive_utc_days d JOIN {hours} r ON {_IN_DAY}
    GROUP BY d.site_id, d.day, {by} ORDER BY d.site_id, d.day"""
    delete = (f"DELETE FROM {days} USING derive_utc_days d "
              f"WHERE {days}.site_id = d.site_id AND {days}.day = d.day")  # fmt: skip
    return [(delete, []), (insert, [])]


_DAY_NAMES = _latest_names(
    "rollup_product_day", "day",
    f"derive_utc_days d JOIN rollup_product_hour r ON {_IN_DAY}",
    "r", ("name_ts", "name_tx", "name_line"),
)  # fmt: skip


def _clear(table: str) -> Step:
    return (f"DELETE FROM {table} USING {DIRTY} d "
            f"WHERE {table}.site_id = d.site_id AND {table}.hour = d.hour", [])  # fmt: skip


def commerce_rollup_steps() -> list[Step]:
    """Recompute the marked hours' rows and their days', then forget the marks."""
    sums = tuple(_COLUMNS.split(", ")[5:])
    hours = f"(SELECT * FROM {SALES_HOUR} UNION ALL SELECT * FROM rollup_commerce_hour)"
    return [
        _clear(SALES_HOUR),
        _clear("rollup_commerce_hour"),
        _clear("rollup_product_hour"),
        (_TOTALS, []),
        (_BY_DIMENSION, []),
        (_PRODUCTS, []),
        (_PRODUCT_NAMES, []),
        *_DAYS,
        *_day_rows(hours, "rollup_commerce_day", ("dim", "value", "currency"), sums),
        *_day_rows(
            "rollup_product_hour",
            "rollup_product_day",
            ("sku", "currency"),
            ("quantity", "revenue", "transactions"),
        ),
        (_DAY_NAMES, []),
        ("DROP TABLE derive_utc_days", []),
        (f"DELETE FROM {DIRTY}", []),
    ]
