-- A transaction and its line items found by their id: the embedded store looks a key up
-- in an index only when the key is the statement's one condition on the table, so the
-- reports read the id's rows first, then keep the site's (reports/queries/commerce.py).
CREATE INDEX txn_id ON txn (transaction_id);
CREATE INDEX txn_item_id ON txn_item (transaction_id);
-- only: postgres (a product's current name: the latest of its daily rows with one)
CREATE INDEX rollup_product_day_name ON rollup_product_day
    (site_id, sku, name_ts DESC, name_tx DESC, name_line DESC) INCLUDE (name)
    WHERE name IS NOT NULL;
-- The embedded store reads ranges of the rollups by their stored order, never by these
-- indexes, and a checkpoint gives back the space of deleted rows only in a table without
-- one: the derive job replaces rollup rows on every run, so they go.
-- only: duckdb
DROP INDEX rollup_hour_key;
-- only: duckdb
DROP INDEX rollup_session_hour_key;
-- only: duckdb
DROP INDEX rollup_day_key;
-- only: duckdb
DROP INDEX rollup_week_key;
-- only: duckdb
DROP INDEX rollup_commerce_hour_key;
-- only: duckdb
DROP INDEX rollup_sales_hour_key;
-- only: duckdb
DROP INDEX rollup_commerce_day_key;
-- only: duckdb
DROP INDEX rollup_product_hour_key;
-- only: duckdb
DROP INDEX rollup_product_day_key;
