-- Visitors per site, week (Monday, in the site's time zone) and dimension value: the union
-- of the week's daily sketches, so a long range merges a few weeks instead of every day.
CREATE TABLE rollup_week (
    site_id VARCHAR NOT NULL,
    week    DATE NOT NULL,
    tz      VARCHAR NOT NULL,
    dim     VARCHAR NOT NULL,
    value   VARCHAR,
    sketch  BLOB NOT NULL
);
CREATE INDEX rollup_week_key ON rollup_week (site_id, dim, week);
