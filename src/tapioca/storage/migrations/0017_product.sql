-- Product analytics state, kept by the derive job (derive/product.py) from the events it
-- processes, in the same transaction as the sessions and rollups.
--
-- Each user's first event ever on a site (by time, then event id) and that event's
-- channel, device and campaign: the user's retention cohort and what it is filtered by.
-- A late event earlier than the stored one takes its place.
CREATE TABLE user_first (
    site_id      {key} NOT NULL,
    visitor_id   {key} NOT NULL,
    ts           timestamptz NOT NULL,
    event_id     {key} NOT NULL,
    channel      {key},
    device       {key},
    utm_source   {key},
    utm_medium   {key},
    utm_campaign {key},
    PRIMARY KEY (site_id, visitor_id)
);
-- only: postgres
CREATE INDEX user_first_site_ts ON user_first (site_id, ts) INCLUDE (visitor_id);
-- The days (in the site's time zone) on which each user had an event: active users and
-- retention periods. After a change of the site's zone the site's rows go, and the
-- daily job writes them again day by day in the new zone (derive/days.py), while reports
-- read its events.
CREATE TABLE user_day (
    site_id    {key} NOT NULL,
    day        date NOT NULL,
    visitor_id {key} NOT NULL,
    PRIMARY KEY (site_id, day, visitor_id)
);
-- only: postgres
CREATE INDEX user_day_visitor ON user_day (site_id, visitor_id, day);
