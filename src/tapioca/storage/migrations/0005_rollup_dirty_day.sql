-- Hours whose daily visitor rollups are still to recompute: the derive job recomputes
-- hours every run but days (a whole day of events each) only as often as they are cheap.
CREATE TABLE rollup_dirty_day (
    site_id {key} NOT NULL,
    hour    timestamptz NOT NULL,
    PRIMARY KEY (site_id, hour)
);
