-- Daily rows carry the day's additive figures too, so a report over whole days of the
-- site's zone sums one row per day and value instead of 24 hourly ones. Event dimensions
-- (and the total, dim '') count events and pageviews; session dimensions (and the total)
-- count sessions started that day. Recomputed by the derive job: until a day is redone,
-- its hours are marked and reports read them. (DuckDB adds no column with a constraint:
-- the derive job always writes every one.)
ALTER TABLE rollup_day ADD COLUMN events BIGINT DEFAULT 0;
ALTER TABLE rollup_day ADD COLUMN pageviews BIGINT DEFAULT 0;
ALTER TABLE rollup_day ADD COLUMN sessions BIGINT DEFAULT 0;
ALTER TABLE rollup_day ADD COLUMN bounces BIGINT DEFAULT 0;
ALTER TABLE rollup_day ADD COLUMN duration_seconds DOUBLE DEFAULT 0;
ALTER TABLE rollup_day ADD COLUMN session_pageviews BIGINT DEFAULT 0;
ALTER TABLE rollup_day ADD COLUMN session_events BIGINT DEFAULT 0;
INSERT INTO rollup_dirty_day (site_id, hour) SELECT DISTINCT site_id, hour FROM rollup_hour
ON CONFLICT DO NOTHING;
