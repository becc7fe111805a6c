-- Sites and the append-only event table (deduplicated on (site_id, event_id)).
CREATE TABLE site (
    id          VARCHAR PRIMARY KEY,
    name        VARCHAR,
    timezone    VARCHAR NOT NULL DEFAULT 'UTC',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE SEQUENCE event_seq;

CREATE TABLE event (
    site_id         VARCHAR NOT NULL,
    event_id        VARCHAR NOT NULL,
    seq             BIGINT NOT NULL DEFAULT nextval('event_seq'),
    event_type      VARCHAR NOT NULL,
    ts              TIMESTAMPTZ NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    visitor_id      VARCHAR NOT NULL,
    user_id         VARCHAR,
    anonymous_id    VARCHAR,
    session_id      VARCHAR,
    url             VARCHAR,
    path            VARCHAR,
    referrer        VARCHAR,
    title           VARCHAR,
    utm_source      VARCHAR,
    utm_medium      VARCHAR,
    utm_campaign    VARCHAR,
    utm_term        VARCHAR,
    utm_content     VARCHAR,
    user_agent      VARCHAR,
    screen_width    INTEGER,
    device          VARCHAR,
    browser         VARCHAR,
    os              VARCHAR,
    channel         VARCHAR,
    source          VARCHAR,
    page_type       VARCHAR,
    revenue         DECIMAL(18, 4),
    currency        VARCHAR,
    transaction_id  VARCHAR,
    items           JSON,
    properties      JSON,
    is_bot          BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (site_id, event_id)
);

-- Cookieless visitor ids: one random salt per UTC day (production keeps it in Redis).
CREATE TABLE visitor_salt (
    day   DATE PRIMARY KEY,
    salt  BLOB NOT NULL
);
