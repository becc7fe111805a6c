-- When a derive job's position was set from nothing (its first run, or the first after a
-- rebuild emptied its tables): the same seq before and after a rebuild may stand for
-- other events (a person's deleted), so an answer kept with its seq is kept with this too.
ALTER TABLE derive_state ADD COLUMN began_at timestamptz;
