-- E-commerce facts derived from events by the derive job (derive/commerce.py): one
-- transaction per (site, transaction id) from its first purchase event, its line items,
-- carts (view_cart events) and refunds. A transaction and a cart carry the dimensions of
-- their event and of the session that holds it (refreshed when that session changes).
-- A currency is the one sent, upper case; none (NULL) is the site's reporting currency.
CREATE TABLE txn (
    site_id          {key} NOT NULL,
    transaction_id   {key} NOT NULL,
    event_id         {key} NOT NULL,
    ts               timestamptz NOT NULL,
    visitor_id       {key} NOT NULL,
    event_session_id {key},
    revenue          numeric(38, 4) NOT NULL,
    currency         text,
    items            bigint NOT NULL,
    path             {key},
    page_type        {key},
    referrer         text,
    utm_term         {key},
    utm_content      {key},
    session_id       {key},
    landing_path     {key},
    channel          {key},
    source           {key},
    device           {key},
    browser          {key},
    os               {key},
    utm_source       {key},
    utm_medium       {key},
    utm_campaign     {key},
    -- the time of the transaction before it (by time, then id) of its user and of its
    -- session: the distinct buyers and sessions of a range are its transactions with none
    -- before it in the range (reports/commerce.py)
    prev_buyer_ts    timestamptz,
    prev_session_ts  timestamptz
);
-- only: postgres
ALTER TABLE txn ADD PRIMARY KEY (site_id, transaction_id);
-- only: postgres
CREATE INDEX txn_repeat_buyer ON txn (site_id, ts) INCLUDE (prev_buyer_ts)
    WHERE prev_buyer_ts IS NOT NULL;
-- only: postgres
CREATE INDEX txn_repeat_session ON txn (site_id, ts) INCLUDE (prev_session_ts)
    WHERE prev_session_ts IS NOT NULL;
-- only: postgres
CREATE INDEX txn_site_session ON txn (site_id, session_id);
-- only: postgres
CREATE INDEX txn_site_ts ON txn (site_id, ts) INCLUDE (visitor_id, session_id, revenue, currency, items);
-- only: postgres
CREATE INDEX txn_site_visitor ON txn (site_id, visitor_id, ts);

CREATE TABLE txn_item (
    site_id         {key} NOT NULL,
    transaction_id  {key} NOT NULL,
    line            integer NOT NULL,
    ts              timestamptz NOT NULL,
    sku             {key} NOT NULL,
    name            text,
    category        text,
    price           numeric(18, 4),
    quantity        bigint NOT NULL,
    currency        text
);
-- only: postgres
ALTER TABLE txn_item ADD PRIMARY KEY (site_id, transaction_id, line);
-- only: postgres
CREATE INDEX txn_item_site_ts ON txn_item (site_id, ts) INCLUDE (sku, quantity, price, currency, transaction_id);
-- only: postgres (a product's current name: its latest line with one)
CREATE INDEX txn_item_site_sku ON txn_item (site_id, sku, ts);

CREATE TABLE cart (
    site_id          {key} NOT NULL,
    event_id         {key} NOT NULL,
    ts               timestamptz NOT NULL,
    visitor_id       {key} NOT NULL,
    event_session_id {key},
    value            numeric(38, 4) NOT NULL,
    items            bigint NOT NULL,
    currency         text,
    path             {key},
    page_type        {key},
    referrer         text,
    utm_term         {key},
    utm_content      {key},
    session_id       {key},
    landing_path     {key},
    channel          {key},
    source           {key},
    device           {key},
    browser          {key},
    os               {key},
    utm_source       {key},
    utm_medium       {key},
    utm_campaign     {key}
);
-- only: postgres
ALTER TABLE cart ADD PRIMARY KEY (site_id, event_id);
-- only: postgres
CREATE INDEX cart_site_ts ON cart (site_id, ts) INCLUDE (value, items, currency);
-- only: postgres
CREATE INDEX cart_site_visitor ON cart (site_id, visitor_id, ts);

-- A refund without an amount (no revenue, no items) gives back its transaction's revenue.
CREATE TABLE refund (
    site_id         {key} NOT NULL,
    event_id        {key} NOT NULL,
    transaction_id  {key},
    ts              timestamptz NOT NULL,
    amount          numeric(38, 4),
    currency        text
);
-- only: postgres
ALTER TABLE refund ADD PRIMARY KEY (site_id, event_id);
-- only: postgres
CREATE INDEX refund_site_ts ON refund (site_id, ts);

-- Per site, UTC hour, dimension value (dim '' is the site total) and currency: the
-- additive figures of the transactions of the hour (and, in the total, of its carts and
-- refunds), with the transactions that are the first of their user and of their session.
CREATE TABLE rollup_commerce_hour (
    site_id       {key} NOT NULL,
    hour          timestamptz NOT NULL,
    dim           {key} NOT NULL,
    value         {key},
    currency      text,
    transactions  bigint NOT NULL,
    revenue       numeric(38, 4) NOT NULL,
    items         bigint NOT NULL,
    new_buyers    bigint NOT NULL,
    new_sessions  bigint NOT NULL,
    carts         bigint NOT NULL,
    cart_value    numeric(38, 4) NOT NULL,
    cart_items    bigint NOT NULL,
    refunds       numeric(38, 4) NOT NULL
);
CREATE INDEX rollup_commerce_hour_key ON rollup_commerce_hour (site_id, dim, hour);
-- The site's own rows (dim ''), with its carts and refunds, apart: one per hour and currency.
CREATE TABLE rollup_sales_hour (
    site_id       {key} NOT NULL,
    hour          timestamptz NOT NULL,
    dim           {key} NOT NULL,
    value         {key},
    currency      text,
    transactions  bigint NOT NULL,
    revenue       numeric(38, 4) NOT NULL,
    items         bigint NOT NULL,
    new_buyers    bigint NOT NULL,
    new_sessions  bigint NOT NULL,
    carts         bigint NOT NULL,
    cart_value    numeric(38, 4) NOT NULL,
    cart_items    bigint NOT NULL,
    refunds       numeric(38, 4) NOT NULL
);
CREATE INDEX rollup_sales_hour_key ON rollup_sales_hour (site_id, hour);
-- The same per UTC day: a range reads its whole UTC days here and its edge hours above.
CREATE TABLE rollup_commerce_day (
    site_id       {key} NOT NULL,
    day           date NOT NULL,
    dim           {key} NOT NULL,
    value         {key},
    currency      text,
    transactions  bigint NOT NULL,
    revenue       numeric(38, 4) NOT NULL,
    items         bigint NOT NULL,
    new_buyers    bigint NOT NULL,
    new_sessions  bigint NOT NULL,
    carts         bigint NOT NULL,
    cart_value    numeric(38, 4) NOT NULL,
    cart_items    bigint NOT NULL,
    refunds       numeric(38, 4) NOT NULL
);
CREATE INDEX rollup_commerce_day_key ON rollup_commerce_day (site_id, dim, day);
-- Per site, UTC hour, sku and currency: the line items of the hour's transactions.
CREATE TABLE rollup_product_hour (
    site_id       {key} NOT NULL,
    hour          timestamptz NOT NULL,
    sku           {key} NOT NULL,
    currency      text,
    quantity      bigint NOT NULL,
    revenue       numeric(38, 4) NOT NULL,
    transactions  bigint NOT NULL,
    -- the latest line item with a name (by time, transaction, line): the product's name
    name          text,
    name_ts       timestamptz,
    name_tx       {key},
    name_line     integer
);
CREATE INDEX rollup_product_hour_key ON rollup_product_hour (site_id, hour);
-- The same per UTC day: a range reads its whole UTC days here and its edge hours above.
CREATE TABLE rollup_product_day (
    site_id       {key} NOT NULL,
    day           date NOT NULL,
    sku           {key} NOT NULL,
    currency      text,
    quantity      bigint NOT NULL,
    revenue       numeric(38, 4) NOT NULL,
    transactions  bigint NOT NULL,
    name          text,
    name_ts       timestamptz,
    name_tx       {key},
    name_line     integer
);
CREATE INDEX rollup_product_day_key ON rollup_product_day (site_id, day);
-- (site, UTC hour) pairs whose commerce rollups the derive job recomputes.
CREATE TABLE commerce_dirty (
    site_id {key} NOT NULL,
    hour    timestamptz NOT NULL,
    PRIMARY KEY (site_id, hour)
);

-- Every stored purchase, cart and refund event becomes derived data: the job starts over.
DELETE FROM derive_state;
