-- Site settings, and the derived session table kept up to date by the derive job.
ALTER TABLE site ADD COLUMN domains text NOT NULL DEFAULT '[]';
ALTER TABLE site ADD COLUMN currency text NOT NULL DEFAULT 'USD';
ALTER TABLE site ADD COLUMN page_type_rules text NOT NULL DEFAULT '[]';
ALTER TABLE site ADD COLUMN public boolean NOT NULL DEFAULT false;

CREATE TABLE session (
    site_id        text COLLATE "C" NOT NULL,
    session_id     text COLLATE "C" NOT NULL,
    visitor_id     text COLLATE "C" NOT NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL,
    events         integer NOT NULL,
    pageviews      integer NOT NULL,
    is_bounce      boolean NOT NULL,
    landing_path   text COLLATE "C",
    channel        text COLLATE "C",
    source         text COLLATE "C",
    device         text COLLATE "C",
    browser        text COLLATE "C",
    os             text COLLATE "C",
    utm_source     text COLLATE "C",
    utm_medium     text COLLATE "C",
    utm_campaign   text COLLATE "C",
    client_defined boolean NOT NULL,
    PRIMARY KEY (site_id, session_id)
);
CREATE INDEX session_site_started ON session (site_id, started_at);
CREATE INDEX session_site_visitor ON session (site_id, visitor_id, started_at);
CREATE INDEX event_site_visitor_ts ON event (site_id, visitor_id, ts);
CREATE INDEX event_site_session ON event (site_id, session_id) WHERE session_id IS NOT NULL;

-- How far each derive job has processed the event table (by ingest sequence).
CREATE TABLE derive_state (
    name        text PRIMARY KEY,
    last_seq    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
