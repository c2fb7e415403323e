"""Date formats of the server-rendered pages (the admin, the dashboard); the API writes ISO 8601.

Full timestamps, to the second, with the zone's abbreviation: the admin renders them in the
administered tenant's time zone (``tenancy.admin_site``), so the zone is said, not assumed.
"""

DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
DATETIME_FORMAT = "j M Y, H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
