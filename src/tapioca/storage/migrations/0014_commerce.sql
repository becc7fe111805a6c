-- E-commerce facts derived from events by the derive job (derive/commerce.py): one
-- transaction per (site, transaction id) from its first purchase event, its line items,
-- carts (view_cart events) and refunds. A transaction and a cart carry the dimensions of
-- their event and of the session that holds it (refreshed when that session changes).
CREATE TABLE txn (
    site_id          {key} NOT NULL,
    transaction_id   {key} NOT NULL,
    event_id         {key} NOT NULL,
    ts               timestamptz NOT NULL,
    visitor_id       {key} NOT NULL,
    event_session_id {key},
    revenue          numeric(18, 4) NOT NULL,
    currency         text NOT NULL,
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
    utm_campaign     {key}
);
-- only: postgres
ALTER TABLE txn ADD PRIMARY KEY (site_id, transaction_id);
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
    currency        text NOT NULL
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
    value            numeric(18, 4) NOT NULL,
    items            bigint NOT NULL,
    currency         text NOT NULL,
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
    amount          numeric(18, 4),
    currency        text
);
-- only: postgres
ALTER TABLE refund ADD PRIMARY KEY (site_id, event_id);
-- only: postgres
CREATE INDEX refund_site_ts ON refund (site_id, ts);

-- Every stored purchase, cart and refund event becomes derived data: the job starts over.
DELETE FROM derive_state;
