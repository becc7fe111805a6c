-- The hourly event rows a derive run makes on a second connection while it makes its
-- sessions (derive/rollups.py, event_rows_ahead), moved into rollup_hour by the run's own
-- transaction: rollup_hour's columns. Only the derive job reads it. Unlogged: a crash
-- empties it, and its run is done again. The embedded store derives on one connection
-- and leaves it empty.
CREATE {unlogged} TABLE rollup_hour_ahead AS SELECT * FROM rollup_hour LIMIT 0;
