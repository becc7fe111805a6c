-- Daily rows carry the day's additive figures too, so a report over whole days of the
-- site's zone sums one row per day and value instead of 24 hourly ones. Event dimensions
-- (and the total, dim '') count events and pageviews; session dimensions (and the total)
-- count sessions started that day. Recomputed by the derive job: until a day is redone,
-- its hours are marked and reports read them.
-- only: duckdb (DuckDB sets NOT NULL only on a column no index depends on)
DROP INDEX rollup_day_key;
ALTER TABLE rollup_day ADD COLUMN events bigint DEFAULT 0;
ALTER TABLE rollup_day ALTER COLUMN events SET NOT NULL;
ALTER TABLE rollup_day ADD COLUMN pageviews bigint DEFAULT 0;
ALTER TABLE rollup_day ALTER COLUMN pageviews SET NOT NULL;
ALTER TABLE rollup_day ADD COLUMN sessions bigint DEFAULT 0;
ALTER TABLE rollup_day ALTER COLUMN sessions SET NOT NULL;
ALTER TABLE rollup_day ADD COLUMN bounces bigint DEFAULT 0;
ALTER TABLE rollup_day ALTER COLUMN bounces SET NOT NULL;
ALTER TABLE rollup_day ADD COLUMN duration_seconds double precision DEFAULT 0;
ALTER TABLE rollup_day ALTER COLUMN duration_seconds SET NOT NULL;
ALTER TABLE rollup_day ADD COLUMN session_pageviews bigint DEFAULT 0;
ALTER TABLE rollup_day ALTER COLUMN session_pageviews SET NOT NULL;
ALTER TABLE rollup_day ADD COLUMN session_events bigint DEFAULT 0;
ALTER TABLE rollup_day ALTER COLUMN session_events SET NOT NULL;
-- only: duckdb
CREATE INDEX rollup_day_key ON rollup_day (site_id, dim, day);
INSERT INTO rollup_dirty_day (site_id, hour) SELECT DISTINCT site_id, hour FROM rollup_hour
ON CONFLICT DO NOTHING;
