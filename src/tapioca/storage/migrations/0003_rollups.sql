-- Rollups the web reports read instead of scanning events (derive.md, Rollups).
-- (site, UTC hour) pairs whose rollups must be recomputed by the derive job.
CREATE TABLE rollup_dirty (
    site_id {key} NOT NULL,
    hour    timestamptz NOT NULL,
    PRIMARY KEY (site_id, hour)
);
-- Events per site, UTC hour and event dimension value (dim '' is the site total).
CREATE TABLE rollup_hour (
    site_id   {key} NOT NULL,
    hour      timestamptz NOT NULL,
    dim       {key} NOT NULL,
    value     {key},
    events    bigint NOT NULL,
    pageviews bigint NOT NULL,
    visitors  bigint NOT NULL
);
CREATE INDEX rollup_hour_key ON rollup_hour (site_id, dim, hour);
-- Sessions per site, UTC hour of their start and session dimension value.
CREATE TABLE rollup_session_hour (
    site_id          {key} NOT NULL,
    hour             timestamptz NOT NULL,
    dim              {key} NOT NULL,
    value            {key},
    sessions         bigint NOT NULL,
    bounces          bigint NOT NULL,
    duration_seconds double precision NOT NULL,
    pageviews        bigint NOT NULL,
    events           bigint NOT NULL,
    visitors         bigint NOT NULL
);
CREATE INDEX rollup_session_hour_key ON rollup_session_hour (site_id, dim, hour);
-- Visitors per site, day in the site's time zone (tz) and dimension value: the exact
-- count and a mergeable sketch (kit/sketch.py) for ranges of many days.
CREATE TABLE rollup_day (
    site_id  {key} NOT NULL,
    day      date NOT NULL,
    tz       text NOT NULL,
    dim      {key} NOT NULL,
    value    {key},
    visitors bigint NOT NULL,
    sketch   bytea NOT NULL
);
CREATE INDEX rollup_day_key ON rollup_day (site_id, dim, day);
-- The job that keeps sessions and rollups is now one job, "web".
UPDATE derive_state SET name = 'web' WHERE name = 'sessions';
