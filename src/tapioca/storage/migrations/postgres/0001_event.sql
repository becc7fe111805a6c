-- Sites and the append-only event table (deduplicated on (site_id, event_id)).
CREATE TABLE site (
    id          text COLLATE "C" PRIMARY KEY,
    name        text,
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE event (
    site_id         text COLLATE "C" NOT NULL,
    event_id        text COLLATE "C" NOT NULL,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    event_type      text COLLATE "C" NOT NULL,
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    visitor_id      text COLLATE "C" NOT NULL,
    user_id         text COLLATE "C",
    anonymous_id    text COLLATE "C",
    session_id      text COLLATE "C",
    url             text,
    path            text COLLATE "C",
    referrer        text,
    title           text,
    utm_source      text COLLATE "C",
    utm_medium      text COLLATE "C",
    utm_campaign    text COLLATE "C",
    utm_term        text COLLATE "C",
    utm_content     text COLLATE "C",
    user_agent      text,
    screen_width    integer,
    device          text COLLATE "C",
    browser         text COLLATE "C",
    os              text COLLATE "C",
    channel         text COLLATE "C",
    source          text COLLATE "C",
    page_type       text COLLATE "C",
    revenue         numeric(18, 4),
    currency        text,
    transaction_id  text COLLATE "C",
    items           jsonb,
    properties      jsonb,
    is_bot          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (site_id, event_id)
);

-- Reports scan one site's time range; these columns make /stats an index-only scan.
CREATE INDEX event_site_ts ON event (site_id, ts) INCLUDE (event_type, visitor_id, path, is_bot);
CREATE INDEX event_seq ON event (seq);
