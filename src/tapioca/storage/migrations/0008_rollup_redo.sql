-- Sites whose daily visitor rollups are being redone (after a time zone change): until
-- the derive job has redone all their days, reports count their visitors from events.
CREATE TABLE rollup_redo (
    site_id {key} PRIMARY KEY
);
