-- Visitors per site, week (Monday, in the site's time zone) and dimension value: the union
-- of the week's daily sketches, so a long range merges a few weeks instead of every day.
CREATE TABLE rollup_week (
    site_id {key} NOT NULL,
    week    date NOT NULL,
    tz      text NOT NULL,
    dim     {key} NOT NULL,
    value   {key},
    sketch  bytea NOT NULL
);
CREATE INDEX rollup_week_key ON rollup_week (site_id, dim, week);
