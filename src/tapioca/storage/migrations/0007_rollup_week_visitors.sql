-- Weekly rows carry their visitor count too, so a breakdown ranked by visitors can bound
-- each value from the rows alone. Recomputed by the derive job from the daily rows.
DELETE FROM rollup_sketch WHERE id IN (SELECT sketch_id FROM rollup_week);
DROP TABLE rollup_week;
CREATE TABLE rollup_week (
    site_id   {key} NOT NULL,
    week      date NOT NULL,
    tz        text NOT NULL,
    dim       {key} NOT NULL,
    value     {key},
    visitors  bigint NOT NULL,
    sketch_id bigint NOT NULL
);
CREATE INDEX rollup_week_key ON rollup_week (site_id, dim, week);
INSERT INTO rollup_dirty_day (site_id, hour) SELECT DISTINCT site_id, hour FROM rollup_hour
ON CONFLICT DO NOTHING;
