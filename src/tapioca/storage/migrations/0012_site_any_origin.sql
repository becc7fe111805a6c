-- Whether browsers on any origin may send a site's events (CORS of the ingest routes), or
-- only pages on the site's own domains. NULL: the instance's default
-- (TAPIOCA_CORS_ANY_ORIGIN), as for the sites made from their first events and those
-- older than this column.
ALTER TABLE site ADD COLUMN any_origin boolean;
