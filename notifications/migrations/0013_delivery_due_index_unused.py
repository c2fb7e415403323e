"""Deliveries lose ``delivery_due_idx`` (every pending row by its due time), which no query reads
since a claim takes the due e-mails and one endpoint's due rows through their own partial
indexes (``delivery_email_due_idx``, ``delivery_endpoint_due_idx``): it only cost every delivery
an entry. Dropped CONCURRENTLY (every decision writes deliveries), hence not atomic.
"""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("notifications", "0012_redundant_key_indexes")]

    operations = [RemoveIndexConcurrently(model_name="delivery", name="delivery_due_idx")]
