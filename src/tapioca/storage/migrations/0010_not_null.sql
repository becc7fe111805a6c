-- Columns that the embedded store added without their NOT NULL (DuckDB adds a column with
-- no constraint; migrations 2 and 9 now set it in a statement of its own, PostgreSQL had
-- it all along).
-- only: duckdb
ALTER TABLE site ALTER COLUMN domains SET NOT NULL;
-- only: duckdb
ALTER TABLE site ALTER COLUMN currency SET NOT NULL;
-- only: duckdb
ALTER TABLE site ALTER COLUMN page_type_rules SET NOT NULL;
-- only: duckdb
ALTER TABLE site ALTER COLUMN public SET NOT NULL;
-- only: duckdb (DuckDB sets NOT NULL only on a column no index depends on)
DROP INDEX rollup_day_key;
-- only: duckdb
ALTER TABLE rollup_day ALTER COLUMN events SET NOT NULL;
-- only: duckdb
ALTER TABLE rollup_day ALTER COLUMN pageviews SET NOT NULL;
-- only: duckdb
ALTER TABLE rollup_day ALTER COLUMN sessions SET NOT NULL;
-- only: duckdb
ALTER TABLE rollup_day ALTER COLUMN bounces SET NOT NULL;
-- only: duckdb
ALTER TABLE rollup_day ALTER COLUMN duration_seconds SET NOT NULL;
-- only: duckdb
ALTER TABLE rollup_day ALTER COLUMN session_pageviews SET NOT NULL;
-- only: duckdb
ALTER TABLE rollup_day ALTER COLUMN session_events SET NOT NULL;
-- only: duckdb
CREATE INDEX rollup_day_key ON rollup_day (site_id, dim, day);
