-- Sketches move to their own table, looked up by id: a report reads the small daily and
-- weekly rows first and fetches only the sketches it merges (an embedded scan of rows
-- holding sketches reads all of them). The daily rows are recomputed by the derive job.
DROP TABLE rollup_day;
DROP TABLE rollup_week;
CREATE TABLE rollup_sketch (
    id     bigint PRIMARY KEY,
    sketch bytea NOT NULL
);
CREATE TABLE rollup_day (
    site_id   {key} NOT NULL,
    day       date NOT NULL,
    tz        text NOT NULL,
    dim       {key} NOT NULL,
    value     {key},
    visitors  bigint NOT NULL,
    sketch_id bigint NOT NULL
);
CREATE INDEX rollup_day_key ON rollup_day (site_id, dim, day);
CREATE TABLE rollup_week (
    site_id   {key} NOT NULL,
    week      date NOT NULL,
    tz        text NOT NULL,
    dim       {key} NOT NULL,
    value     {key},
    sketch_id bigint NOT NULL
);
CREATE INDEX rollup_week_key ON rollup_week (site_id, dim, week);
INSERT INTO rollup_dirty_day (site_id, hour) SELECT DISTINCT site_id, hour FROM rollup_hour
ON CONFLICT DO NOTHING;
