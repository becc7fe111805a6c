-- Site settings, and the derived session table kept up to date by the derive job.
ALTER TABLE site ADD COLUMN domains VARCHAR DEFAULT '[]';
ALTER TABLE site ADD COLUMN currency VARCHAR DEFAULT 'USD';
ALTER TABLE site ADD COLUMN page_type_rules VARCHAR DEFAULT '[]';
ALTER TABLE site ADD COLUMN public BOOLEAN DEFAULT false;

CREATE TABLE session (
    site_id        VARCHAR NOT NULL,
    session_id     VARCHAR NOT NULL,
    visitor_id     VARCHAR NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    ended_at       TIMESTAMPTZ NOT NULL,
    events         INTEGER NOT NULL,
    pageviews      INTEGER NOT NULL,
    is_bounce      BOOLEAN NOT NULL,
    landing_path   VARCHAR,
    channel        VARCHAR,
    source         VARCHAR,
    device         VARCHAR,
    browser        VARCHAR,
    os             VARCHAR,
    utm_source     VARCHAR,
    utm_medium     VARCHAR,
    utm_campaign   VARCHAR,
    client_defined BOOLEAN NOT NULL
);

CREATE TABLE derive_state (
    name        VARCHAR PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
