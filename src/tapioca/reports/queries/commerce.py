"""Report queries over the derived e-commerce facts (model/commerce.py): transactions,
their line items, carts and refunds of a range that match filters, in total or grouped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from tapioca.model.commerce import CART, REFUNDS, TXN, TXN_ITEM, fact_column
from tapioca.reports.filters import Filter
from tapioca.reports.queries import Params, Query
from tapioca.reports.queries.rollup import Group


def fact_where(
    table: str,
    site_id: str,
    start: datetime | None,
    end: datetime | None,
    filters: list[Filter],
    p: Params,
    alias: str = "t",
) -> str:
    """The facts of ``table`` of the site in [start, end) matching every filter (a
    transaction matches by its session's and its purchase event's values)."""
    clauses = [f"{alias}.site_id = {p.add(site_id)}"]
    if start is not None:
        clauses.append(f"{alias}.ts >= {p.add(start)}")
    if end is not None:
        clauses.append(f"{alias}.ts < {p.add(end)}")
    clauses += [f"{fact_column(table, f.dimension, alias)} = {p.add(f.value)}" for f in filters]
    return " AND ".join(clauses)


SALES = ("transactions", "revenue", "items")
ROLLED = (*SALES, "new_buyers", "new_sessions", "carts", "cart_value", "cart_items", "refunds")
# what a breakdown, a series or a total without carts and refunds reads of them (money
# is DECIMAL(38, 4), costly to sum on the embedded store: no more of it than needed)
ROLLED_SALES = (*SALES, "new_buyers", "new_sessions")


def build_sales(where: str, p: Params, group: str | None = None) -> Query:
    """Per currency (and ``group``, column k): count, revenue and items of the
    transactions ``where`` keeps (``txn t``)."""
    keys = f"{group} AS k, " if group else ""
    sql = (f"SELECT {keys}t.currency, count(*), sum(t.revenue), sum(t.items) FROM {TXN} t "
           f"WHERE {where} GROUP BY {group + ', ' if group else ''}t.currency")  # fmt: skip
    return Query(sql, p.values, (*(("k",) if group else ()), "currency", *SALES))


def build_distinct(where: str, p: Params, group: str | None = None) -> Query:
    """Distinct buyers and sessions of the transactions ``where`` keeps (per ``group``)."""
    keys = f"{group} AS k, " if group else ""
    sql = (f"SELECT {keys}count(DISTINCT t.visitor_id), count(DISTINCT t.session_id) "
           f"FROM {TXN} t WHERE {where}{' GROUP BY ' + group if group else ''}")  # fmt: skip
    return Query(sql, p.values, (*(("k",) if group else ()), "buyers", "txn_sessions"))


def build_rolled_sales(
    site_id: str, dim: str, start: datetime, end: datetime, group: Group | None, days: bool,
    figures: tuple[str, ...] = ROLLED,
) -> Query:  # fmt: skip
    """Per currency (and ``group``): the sums of ``figures`` of the commerce rows of
    ``dim`` over the range: hourly ones, or (``days``: not grouped by time) the daily rows
    of its whole UTC days and the hourly ones of its edges."""
    p = Params()
    keys = f"{group(p, False)} AS k, " if group else ""
    sums = ", ".join(f"sum(r.{c})" for c in figures)
    where = f"site_id = {p.add(site_id)} AND dim = {p.add(dim)}"
    hours = "rollup_sales_hour" if dim == "" else "rollup_commerce_hour"  # the site's own rows
    if days:
        columns = f"value, currency, {', '.join(figures)}"
        rows = days_and_edges(hours, "rollup_commerce_day", columns, where, start, end, p)
    else:
        rows = (f"SELECT * FROM {hours} WHERE {where} "
                f"AND hour >= {p.add(start)} AND hour < {p.add(end)}")  # fmt: skip
    sql = (f"SELECT {keys}r.currency, {sums} FROM ({rows}) AS r "
           f"GROUP BY {'k, ' if group else ''}r.currency")  # fmt: skip
    return Query(sql, p.values, (*(("k",) if group else ()), "currency", *figures))


def build_crossing(
    site_id: str, start: datetime, end: datetime | None, column: str,
    group: Callable[[Params], str] | None = None, split: Callable[[Params], str] | None = None,
) -> Query:  # fmt: skip
    """The transactions in [start, end) whose previous one of the same user or session
    (``column``: its time) is before ``start`` (or, ``split``, in another bucket): with
    the rolled count of those with none before, the distinct users or sessions."""
    p = Params()
    keys = f"{group(p)} AS k, " if group else ""
    lo = p.add(start)
    earlier = f"t.{column} < {lo}" + (f" OR {split(p)}" if split else "")
    clauses = [f"t.site_id = {p.add(site_id)}", f"t.ts >= {lo}", f"t.{column} IS NOT NULL"]
    if end is not None:
        clauses.append(f"t.ts < {p.add(end)}")
    sql = (f"SELECT {keys}count(*) FROM {TXN} t WHERE {' AND '.join(clauses)} AND ({earlier})"
           + (" GROUP BY k" if group else ""))  # fmt: skip
    return Query(sql, p.values, (*(("k",) if group else ()), "n"))


def build_refunds(
    site_id: str, start: datetime | None, end: datetime | None, filters: list[Filter],
    site_currency: str,
) -> Query:  # fmt: skip
    """Refunded money per currency: each refund's amount, else (none given) its whole
    transaction's revenue; in its currency, else its transaction's, else the site's. A
    refund matches filters by its transaction's values."""
    p = Params()
    clauses = [f"r.site_id = {p.add(site_id)}"]
    if start is not None:
        clauses.append(f"r.ts >= {p.add(start)}")
    if end is not None:
        clauses.append(f"r.ts < {p.add(end)}")
    if filters:  # a refund matches by its transaction: one of none matches no filter
        clauses.append("t.transaction_id IS NOT NULL")
    clauses += [f"{fact_column(TXN, f.dimension)} = {p.add(f.value)}" for f in filters]
    currency = f"coalesce(r.currency, t.currency, {p.add(site_currency)})"
    sql = (
        f"SELECT {currency} AS currency, sum(coalesce(r.amount, t.revenue, 0)) AS refunds "
        f"FROM {REFUNDS} r LEFT JOIN {TXN} t ON t.site_id = r.site_id "
        f"AND t.transaction_id = r.transaction_id WHERE {' AND '.join(clauses)} GROUP BY 1"
    )
    return Query(sql, p.values, ("currency", "refunds"))


def build_carts(where: str, p: Params) -> Query:
    """Per currency: count, value and items of the carts ``where`` keeps (``cart c``)."""
    sql = (f"SELECT c.currency, count(*), sum(c.value), sum(c.items) FROM {CART} c "
           f"WHERE {where} GROUP BY c.currency")  # fmt: skip
    return Query(sql, p.values, ("currency", "carts", "cart_value", "cart_items"))


def build_products(
    site_id: str, start: datetime | None, end: datetime | None, filters: list[Filter],
    currency: str,
) -> Query:  # fmt: skip
    """Per sku: quantity, revenue (lines of transactions in ``currency``) and the
    transactions that hold it, over the line items of the transactions in range."""
    p = Params()
    where = fact_where(TXN_ITEM, site_id, start, end, [], p, "i")
    join = ""
    if filters:
        join = f" JOIN {TXN} t ON t.site_id = i.site_id AND t.transaction_id = i.transaction_id"
        where += " AND " + " AND ".join(
            f"{fact_column(TXN, f.dimension)} = {p.add(f.value)}" for f in filters
        )
    c = p.add(currency)
    sql = f"""
    SELECT sku, sum(q), sum(r), count(*) FROM (
        SELECT i.sku, i.transaction_id, sum(i.quantity) AS q,
               sum(i.price * i.quantity) FILTER (WHERE coalesce(i.currency, {c}) = {c}) AS r
        FROM {TXN_ITEM} i{join} WHERE {where} GROUP BY i.sku, i.transaction_id
    ) AS lines GROUP BY sku"""
    return Query(sql, p.values, ("sku", "quantity", "revenue", "transactions"))


def utc_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """The whole UTC days of [start, end) as [first, after), None when there is none."""
    first = start.astimezone(UTC).date()
    if start.astimezone(UTC) != datetime.combine(first, time(0), UTC):
        first += timedelta(days=1)
    after = end.astimezone(UTC).date()
    return (first, after) if first < after else None


def days_and_edges(
    hours: str, days: str, columns: str, where: str, start: datetime, end: datetime, p: Params
) -> str:
    """SQL: ``columns`` of the rows that cover [start, end) exactly once: those of
    ``days`` (per UTC day) for its whole UTC days, those of ``hours`` for the rest;
    ``where`` holds for both."""
    lo, hi = p.add(start), p.add(end)
    select = f"SELECT {columns} FROM {hours} WHERE {where} AND hour >= {{}} AND hour < {{}}"
    whole = utc_days(start, end)
    if whole is None:
        return select.format(lo, hi)
    first, after = p.add(whole[0]), p.add(whole[1])
    # two plain ranges of hours, their bounds bound as values: each prunes by them
    midnights = [p.add(datetime.combine(day, time(0), UTC)) for day in whole]
    edges = [select.format(lo, midnights[0]), select.format(midnights[1], hi)]
    inside = f"SELECT {columns} FROM {days} WHERE {where} AND day >= {first} AND day < {after}"
    return " UNION ALL ".join([*edges, inside])


def build_rolled_products(site_id: str, start: datetime, end: datetime, currency: str) -> Query:
    """Per sku: the sums of the product rows of the range (days and edges; revenue: those
    in ``currency``, none being the site's)."""
    p = Params()
    rows = days_and_edges("rollup_product_hour", "rollup_product_day",
                          "sku, currency, quantity, revenue, transactions",
                          f"site_id = {p.add(site_id)}", start, end, p)  # fmt: skip
    c = p.add(currency)
    sql = (f"SELECT sku, sum(quantity), sum(revenue) FILTER (WHERE coalesce(currency, {c}) = "
           f"{c}), sum(transactions) FROM ({rows}) AS r GROUP BY sku")  # fmt: skip
    return Query(sql, p.values, ("sku", "quantity", "revenue", "transactions"))


def build_product_names(site_id: str, skus: list[str]) -> Query:
    """Each sku's current name: that of its latest line item with one (the daily product
    rows keep each day's latest), one index probe per sku on PostgreSQL."""
    sql = """
    SELECT s.sku, x.name FROM (SELECT unnest($2::text[]) AS sku) AS s CROSS JOIN LATERAL (
        SELECT r.name FROM rollup_product_day r
        WHERE r.site_id = $1 AND r.sku = s.sku AND r.name IS NOT NULL
        ORDER BY r.name_ts DESC, r.name_tx DESC, r.name_line DESC LIMIT 1
    ) AS x"""
    return Query(sql, [site_id, skus], ("sku", "name"))


TXN_LIST = ("transaction_id", "ts", "revenue", "currency", "items", "visitor_id", "session_id",
            "channel", "source", "device", "landing_path")  # fmt: skip


def build_transactions(
    where: str, p: Params, limit: int, after: tuple[datetime, str] | None
) -> Query:
    """The transactions ``where`` keeps, newest first (time, then id, both descending),
    ``limit`` of them after the cursor position ``after``."""
    if after is not None:
        ts, tx = p.add(after[0]), p.add(after[1])
        where += f" AND (t.ts < {ts} OR (t.ts = {ts} AND t.transaction_id < {tx}))"
    columns = ", ".join(f"t.{c}" for c in TXN_LIST)
    sql = (f"SELECT {columns} FROM {TXN} t WHERE {where} "
           f"ORDER BY t.ts DESC, t.transaction_id DESC LIMIT {int(limit)}")  # fmt: skip
    return Query(sql, p.values, TXN_LIST)


TXN_DETAIL = ("transaction_id", "ts", "revenue", "currency", "items", "visitor_id", "session_id",
              "landing_path", "channel", "source", "device", "browser", "os", "utm_source",
              "utm_medium", "utm_campaign", "path", "page_type")  # fmt: skip


def build_transaction(site_id: str, transaction_id: str, site_currency: str) -> Query:
    """One transaction, with the money its refunds in its currency gave back ($3: the
    site's currency, that of a transaction or refund without one)."""
    columns = ", ".join(f"t.{c}" for c in TXN_DETAIL)
    own = "coalesce(r.currency, t.currency, $3) = coalesce(t.currency, $3)"
    sql = (f"{_by_id(TXN)} SELECT {columns}, sum(coalesce(r.amount, t.revenue)) "
           f"FILTER (WHERE r.event_id IS NOT NULL AND {own}) FROM by_id t "
           f"LEFT JOIN {REFUNDS} r ON r.site_id = $1 AND r.transaction_id = $2 "
           f"WHERE t.site_id = $1 GROUP BY {columns}")  # fmt: skip
    return Query(sql, [site_id, transaction_id, site_currency], (*TXN_DETAIL, "refunds"))


def _by_id(table: str) -> str:
    """SQL: ``by_id``, the rows of ``table`` with the transaction id $2, of any site,
    read by the id's index alone (the site is checked after: DuckDB's index serves a
    statement whose one condition on the table is the id)."""
    return f"WITH by_id AS MATERIALIZED (SELECT * FROM {table} WHERE transaction_id = $2)"


ITEM_COLUMNS = ("sku", "name", "category", "price", "quantity", "currency")


def build_items(site_id: str, transaction_id: str) -> Query:
    sql = (f"{_by_id(TXN_ITEM)} SELECT {', '.join(ITEM_COLUMNS)} FROM by_id "
           "WHERE site_id = $1 ORDER BY line")  # fmt: skip
    return Query(sql, [site_id, transaction_id], ITEM_COLUMNS)
