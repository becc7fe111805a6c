-- Site settings, and the derived session table kept up to date by the derive job.
-- (DuckDB adds a column with no constraint: NOT NULL follows in a statement of its own.)
ALTER TABLE site ADD COLUMN domains text DEFAULT '[]';
ALTER TABLE site ALTER COLUMN domains SET NOT NULL;
ALTER TABLE site ADD COLUMN currency text DEFAULT 'USD';
ALTER TABLE site ALTER COLUMN currency SET NOT NULL;
ALTER TABLE site ADD COLUMN page_type_rules text DEFAULT '[]';
ALTER TABLE site ALTER COLUMN page_type_rules SET NOT NULL;
ALTER TABLE site ADD COLUMN public boolean DEFAULT false;
ALTER TABLE site ALTER COLUMN public SET NOT NULL;

CREATE TABLE session (
    site_id        {key} NOT NULL,
    session_id     {key} NOT NULL,
    visitor_id     {key} NOT NULL,
    started_at     timestamptz NOT NULL,
    ended_at       timestamptz NOT NULL,
    events         integer NOT NULL,
    pageviews      integer NOT NULL,
    is_bounce      boolean NOT NULL,
    landing_path   {key},
    channel        {key},
    source         {key},
    device         {key},
    browser        {key},
    os             {key},
    utm_source     {key},
    utm_medium     {key},
    utm_campaign   {key},
    client_defined boolean NOT NULL
);
-- only: postgres (the embedded store scans: DuckDB keeps no secondary indexes here)
ALTER TABLE session ADD PRIMARY KEY (site_id, session_id);
-- only: postgres
CREATE INDEX session_site_started ON session (site_id, started_at);
-- only: postgres
CREATE INDEX session_site_visitor ON session (site_id, visitor_id, started_at);
-- only: postgres
CREATE INDEX event_site_visitor_ts ON event (site_id, visitor_id, ts);
-- only: postgres
CREATE INDEX event_site_session ON event (site_id, session_id) WHERE session_id IS NOT NULL;

-- How far each derive job has processed the event table (by ingest sequence).
CREATE TABLE derive_state (
    name        text PRIMARY KEY,
    last_seq    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
