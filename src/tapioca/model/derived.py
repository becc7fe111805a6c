"""How far the derived tables are: the job that keeps sessions and rollups, and the last
event seq they hold (reports count the events up to it)."""

WEB_JOB = "web"
# SQL: that seq (0 before the first run).
DERIVED_SEQ = f"(SELECT coalesce(max(last_seq), 0) FROM derive_state WHERE name = '{WEB_JOB}')"
# when that position was set from nothing (a rebuild sets it anew): with the seq, it names
# the events the derived tables hold
DERIVED_SINCE = f"(SELECT max(began_at) FROM derive_state WHERE name = '{WEB_JOB}')"

# The longest window of active users (mau), in days: user_day keeps the gap to a user's
# next active day up to this (derive/product.py), and reports count windows up to it.
LONGEST_WINDOW = 30
