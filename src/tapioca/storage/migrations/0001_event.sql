-- Sites and the append-only event table (deduplicated on (site_id, event_id)).
-- One source for both stores (storage/dialect.py: {key}, {json}, {identity:…}, "-- only:").
CREATE TABLE site (
    id          {key} PRIMARY KEY,
    name        text,
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- only: duckdb (PostgreSQL numbers events with an identity column)
CREATE SEQUENCE event_seq;

CREATE TABLE event (
    site_id         {key} NOT NULL,
    event_id        {key} NOT NULL,
    seq             {identity:event_seq},
    event_type      {key} NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    visitor_id      {key} NOT NULL,
    user_id         {key},
    anonymous_id    {key},
    session_id      {key},
    url             text,
    path            {key},
    referrer        text,
    title           text,
    utm_source      {key},
    utm_medium      {key},
    utm_campaign    {key},
    utm_term        {key},
    utm_content     {key},
    user_agent      text,
    screen_width    integer,
    device          {key},
    browser         {key},
    os              {key},
    channel         {key},
    source          {key},
    page_type       {key},
    revenue         numeric(18, 4),
    currency        text,
    transaction_id  {key},
    items           {json},
    properties      {json},
    is_bot          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (site_id, event_id)
);

-- only: postgres
-- Reports scan one site's time range; these columns make /stats an index-only scan.
CREATE INDEX event_site_ts ON event (site_id, ts) INCLUDE (event_type, visitor_id, path, is_bot);
-- only: postgres
CREATE INDEX event_seq ON event (seq);

-- only: duckdb (production keeps it in Redis)
-- Cookieless visitor ids: one random salt per UTC day.
CREATE TABLE visitor_salt (
    day   date PRIMARY KEY,
    salt  bytea NOT NULL
);
