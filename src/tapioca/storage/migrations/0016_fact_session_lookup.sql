-- The transactions and carts of a client session, found by the session id their event
-- carried: the derive job reads them again whenever that session is redone, and without
-- this index PostgreSQL reads every cart or transaction of the site for each session.
-- The embedded store joins them by hashing and needs no index.
-- only: postgres
CREATE INDEX txn_site_event_session ON txn (site_id, event_session_id);
-- only: postgres
CREATE INDEX cart_site_event_session ON cart (site_id, event_session_id);
