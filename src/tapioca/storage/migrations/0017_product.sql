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
-- gap: the days to the user's next active day, at most 30 (30 also when there is none);
-- NULL only inside the derive run that adds the row.
CREATE TABLE user_day (
    site_id    {key} NOT NULL,
    day        date NOT NULL,
    visitor_id {key} NOT NULL,
    gap        integer,
    PRIMARY KEY (site_id, day, visitor_id)
);
-- only: postgres
CREATE INDEX user_day_visitor ON user_day (site_id, visitor_id, day);
-- Per site, day and gap: how many users were active that day with that gap to their next
-- active day. The users active in the W days ending on day d are those of the rows with
-- day <= d < day + min(gap, W): active users per day, week and month read these rows.
CREATE TABLE active_gap (
    site_id {key} NOT NULL,
    day     date NOT NULL,
    gap     integer NOT NULL,
    users   bigint NOT NULL,
    PRIMARY KEY (site_id, day, gap)
);
-- Per cohort (the day, unit 'd', or week, 'w', of users' first event ever) and period (a
-- day or week), both in the site's zone: the users of the cohort with an event in it.
-- Retention reads these rows, not each user's days.
CREATE TABLE cohort_period (
    site_id {key} NOT NULL,
    unit    text NOT NULL,
    cohort  date NOT NULL,
    period  date NOT NULL,
    users   bigint NOT NULL,
    PRIMARY KEY (site_id, unit, cohort, period)
);
-- Per period (a day 'd', week 'w' or month 'm' in the site's zone) and kind: the users
-- active in it that are new, returning or resurrecting, and the users dormant in it
-- (active in the period before, not in it). Lifecycle reads these rows.
CREATE TABLE lifecycle_period (
    site_id {key} NOT NULL,
    unit    text NOT NULL,
    period  date NOT NULL,
    kind    text NOT NULL,
    users   bigint NOT NULL,
    PRIMARY KEY (site_id, unit, period, kind)
);
-- The events derived before this version: their users' first events and active days.
INSERT INTO user_first (site_id, visitor_id, ts, event_id, channel, device, utm_source,
                        utm_medium, utm_campaign)
SELECT site_id, visitor_id, ts, event_id, channel, device, utm_source, utm_medium, utm_campaign
FROM (
    SELECT site_id, visitor_id, ts, event_id, channel, device, utm_source, utm_medium,
           utm_campaign,
           row_number() OVER (PARTITION BY site_id, visitor_id ORDER BY ts, event_id) AS n
    FROM event
    WHERE NOT is_bot AND seq <= coalesce((SELECT max(last_seq) FROM derive_state), 0)
) AS f WHERE n = 1;
INSERT INTO user_day (site_id, day, visitor_id, gap)
SELECT site_id, day, visitor_id,
       least(coalesce(lead(day) OVER (PARTITION BY site_id, visitor_id ORDER BY day) - day, 30), 30)
FROM (
    SELECT DISTINCT e.site_id, CAST(e.ts AT TIME ZONE s.timezone AS DATE) AS day, e.visitor_id
    FROM event e JOIN site s ON s.id = e.site_id
    WHERE NOT e.is_bot AND e.seq <= coalesce((SELECT max(last_seq) FROM derive_state), 0)
) AS d;
INSERT INTO active_gap (site_id, day, gap, users)
SELECT site_id, day, gap, count(*) FROM user_day GROUP BY site_id, day, gap;
-- The counts of every user, as derive/product.py moves them for the users of a run: the
-- cohort periods by day 'd' and week 'w', the lifecycle by day, week and month 'm'.
INSERT INTO cohort_period (site_id, unit, cohort, period, users)
SELECT u.site_id, t.unit,
       CAST(date_trunc(t.part, CAST(f.ts AT TIME ZONE s.timezone AS DATE)) AS DATE),
       CAST(date_trunc(t.part, u.day) AS DATE), count(DISTINCT u.visitor_id)
FROM user_day u JOIN user_first f ON f.site_id = u.site_id AND f.visitor_id = u.visitor_id
JOIN site s ON s.id = u.site_id
CROSS JOIN (VALUES ('d', 'day'), ('w', 'week')) AS t (unit, part)
GROUP BY 1, 2, 3, 4;
INSERT INTO lifecycle_period (site_id, unit, period, kind, users)
SELECT site_id, unit, period, kind, count(*) FROM (
    WITH b AS (
        SELECT site_id, unit, period, first_period, step,
               lag(period) OVER w AS prev, lead(period) OVER w AS next
        FROM (
            SELECT DISTINCT u.site_id, u.visitor_id, t.unit, t.step,
                   CAST(date_trunc(t.part, u.day) AS DATE) AS period,
                   CAST(date_trunc(t.part, CAST(f.ts AT TIME ZONE s.timezone AS DATE)) AS DATE)
                       AS first_period
            FROM user_day u
            JOIN user_first f ON f.site_id = u.site_id AND f.visitor_id = u.visitor_id
            JOIN site s ON s.id = u.site_id
            CROSS JOIN (VALUES ('d', 'day', INTERVAL '1 day'), ('w', 'week', INTERVAL '7 days'),
                               ('m', 'month', INTERVAL '1 month')) AS t (unit, part, step)
        ) AS x
        WINDOW w AS (PARTITION BY site_id, visitor_id, unit ORDER BY period)
    )
    SELECT site_id, unit, period,
           CASE WHEN period = first_period THEN 'new'
                WHEN prev = CAST(period - step AS DATE) THEN 'returning'
                ELSE 'resurrecting' END AS kind
    FROM b
    UNION ALL
    SELECT site_id, unit, CAST(period + step AS DATE), 'dormant' FROM b
    WHERE next IS NULL OR next <> CAST(period + step AS DATE)
) AS k GROUP BY site_id, unit, period, kind;
