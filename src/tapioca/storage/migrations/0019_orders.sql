-- Order analytics (orders/): a shop's own order database, read but never written, and
-- what the batch keeps of it; the scheduler's runs (scheduler/); forecasts (forecast/).
--
-- One order source per site. The URL with its password is sealed with the instance
-- secret (orders/secrets.py); url_shown has no password and is what answers show.
CREATE TABLE order_source (
    site_id          {key} PRIMARY KEY,
    kind             text NOT NULL,
    url_sealed       text NOT NULL,
    url_shown        text NOT NULL,
    timezone         text NOT NULL,
    counted_statuses {json} NOT NULL,
    mapping          {json} NOT NULL,
    lookback_days    integer NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- Per site and day (the site's zone): counted orders, their revenue (Σ total_amount).
-- Every day from the first order's to the last run's is here, closed days as zeros.
CREATE TABLE order_day (
    site_id {key} NOT NULL,
    day     date NOT NULL,
    orders  bigint NOT NULL,
    revenue numeric(38, 4) NOT NULL,
    PRIMARY KEY (site_id, day)
);
-- 24 rows per day of order_day, zeros included.
CREATE TABLE order_hour (
    site_id {key} NOT NULL,
    day     date NOT NULL,
    hour    integer NOT NULL,
    orders  bigint NOT NULL,
    PRIMARY KEY (site_id, day, hour)
);
-- Per item and day: Σ quantity and Σ quantity × unit price over the counted orders'
-- lines; the item's name is that of its latest line that day.
CREATE TABLE order_item_day (
    site_id   {key} NOT NULL,
    day       date NOT NULL,
    item_id   {key} NOT NULL,
    item_name text,
    quantity  numeric(38, 4) NOT NULL,
    revenue   numeric(38, 4) NOT NULL,
    PRIMARY KEY (site_id, day, item_id)
);
-- Per day of the source's own calendar: the count, Σ total_amount and Σ id of its counted
-- orders, as the last run saw them. A run compares them with the source's to find an
-- order changed outside the lookback window.
CREATE TABLE order_check (
    site_id    {key} NOT NULL,
    source_day date NOT NULL,
    orders     bigint NOT NULL,
    amount     numeric(38, 4) NOT NULL,
    ids        numeric(38, 0) NOT NULL,
    PRIMARY KEY (site_id, source_day)
);
-- Per site: where the batch stands. synced_at: when the last good run finished (reports
-- say how old their data is); through_day: the last day it recomputed; seen_updated: the
-- largest updated_at it read (a source that maps updated_at).
CREATE TABLE order_sync (
    site_id      {key} PRIMARY KEY,
    synced_at    timestamptz,
    through_day  date,
    seen_updated timestamp,
    first_day    date
);
-- The scheduler's runs, and the batch's runs asked over HTTP or the CLI: each keyed by
-- (job, site, scheduled time) and claimed once; cause: schedule, catch_up, http, cli (a conflicting insert claims nothing).
-- A failed run is tried again from next_try_at; a running run whose lease ran out (its
-- process died) is taken over.
CREATE TABLE job_run (
    job           text NOT NULL,
    site_id       {key} NOT NULL,
    scheduled_for timestamptz NOT NULL,
    run_id        text NOT NULL UNIQUE,
    cause         text NOT NULL,
    status        text NOT NULL,
    attempts      integer NOT NULL,
    claimed_by    text NOT NULL,
    lease_until   timestamptz NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    next_try_at   timestamptz,
    error         text,
    details       {json},
    PRIMARY KEY (job, site_id, scheduled_for)
);
-- only: postgres
CREATE INDEX job_run_site ON job_run (site_id, started_at);
-- Each scheduler process's last sign of life.
CREATE TABLE scheduler_beat (
    scheduler_id text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL,
    beat_at      timestamptz NOT NULL
);
-- Forecast runs per site and series, with the backtest that chose the model; the API
-- serves each series' latest run. ts: local time of the site (a day's or an hour's
-- start).
CREATE TABLE forecast_run (
    site_id      {key} NOT NULL,
    series       text NOT NULL,
    generated_at timestamptz NOT NULL,
    model        text NOT NULL,
    level        integer NOT NULL,
    horizon      integer NOT NULL,
    score        double precision,
    model_mae    double precision,
    naive_mae    double precision,
    coverage     double precision,
    origins      integer NOT NULL,
    history      integer NOT NULL,
    PRIMARY KEY (site_id, series, generated_at)
);
CREATE TABLE forecast_point (
    site_id      {key} NOT NULL,
    series       text NOT NULL,
    generated_at timestamptz NOT NULL,
    ts           timestamp NOT NULL,
    value        double precision NOT NULL,
    lower        double precision NOT NULL,
    upper        double precision NOT NULL,
    PRIMARY KEY (site_id, series, generated_at, ts)
);
