-- Visitors per site, week (Monday, in the site's time zone) and dimension value: the union
-- of the week's daily sketches, so a long range merges a few weeks instead of every day.
CREATE TABLE rollup_week (
    site_id text COLLATE "C" NOT NULL,
    week    date NOT NULL,
    tz      text NOT NULL,
    dim     text COLLATE "C" NOT NULL,
    value   text COLLATE "C",
    sketch  bytea NOT NULL
);
CREATE INDEX rollup_week_key ON rollup_week (site_id, dim, week);
