"""The dimensions of the web reports (metrics.md, Web metrics) and the columns that hold
them: the rollups are kept per value of each (derive/rollups.py), reports break down and
filter by them (reports/)."""

from __future__ import annotations

from enum import StrEnum


class Dimension(StrEnum):
    PATH = "path"
    PAGE_TYPE = "page_type"
    LANDING_PAGE = "landing_page"
    EVENT_TYPE = "event_type"
    REFERRER = "referrer"
    CHANNEL = "channel"
    SOURCE = "source"
    DEVICE = "device"
    BROWSER = "browser"
    OS = "os"
    UTM_SOURCE = "utm_source"
    UTM_MEDIUM = "utm_medium"
    UTM_CAMPAIGN = "utm_campaign"
    UTM_TERM = "utm_term"
    UTM_CONTENT = "utm_content"
    COUNTRY = "country"


# Dimensions of a session (its first event's values), by their column of the session
# table: they count sessions.
SESSION_DIMENSIONS = {
    Dimension.LANDING_PAGE: "landing_path",
    Dimension.CHANNEL: "channel",
    Dimension.SOURCE: "source",
    Dimension.DEVICE: "device",
    Dimension.BROWSER: "browser",
    Dimension.OS: "os",
    Dimension.UTM_SOURCE: "utm_source",
    Dimension.UTM_MEDIUM: "utm_medium",
    Dimension.UTM_CAMPAIGN: "utm_campaign",
}
# Dimensions of single events, by their column of the event table.
EVENT_DIMENSIONS = {
    Dimension.PATH: "path",
    Dimension.PAGE_TYPE: "page_type",
    Dimension.EVENT_TYPE: "event_type",
    Dimension.REFERRER: "referrer",
    Dimension.UTM_TERM: "utm_term",
    Dimension.UTM_CONTENT: "utm_content",
}
TOTAL = ""  # the rollup rows of the site as a whole (dim '')
