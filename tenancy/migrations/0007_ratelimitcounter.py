"""The shared throttle counters (``tenancy.ratelimit``): an UNLOGGED table, created by hand.

UNLOGGED: the table skips the write-ahead log (every authenticated write updates a row), so it is
emptied after a crash and not copied to replicas; both only forgive counts. ``fillfactor`` leaves
room on each page so a counter's update stays on its page (a HOT update: no index write). The
only index is the primary key (Django would add a second, ``text_pattern_ops``, for a text key).
"""

from django.db import migrations, models

CREATE = """
CREATE UNLOGGED TABLE tenancy_ratelimitcounter (
    key text PRIMARY KEY,
    count bigint NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    blocked_until timestamp with time zone
) WITH (fillfactor = 70)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0006_user_auth_epoch"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(CREATE, "DROP TABLE tenancy_ratelimitcounter", elidable=False)
            ],
            state_operations=[
                migrations.CreateModel(
                    name="RateLimitCounter",
                    fields=[
                        ("key", models.TextField(primary_key=True, serialize=False)),
                        ("count", models.BigIntegerField()),
                        ("expires_at", models.DateTimeField()),
                        (
                            "blocked_until",
                            models.DateTimeField(
                                blank=True, help_text="Login back-off only.", null=True
                            ),
                        ),
                    ],
                ),
            ],
        ),
    ]
