"""Notification types: comment_mention, comment_added (webhooks) and approver_unresolved."""

import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0009_signature_notification_types"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="event_type",
            field=models.CharField(
                choices=[
                    ("approval_assigned", "Approval assigned"),
                    ("approval_decided", "Approval decided"),
                    ("approval_delegated", "Approval delegated"),
                    ("workflow_completed", "Workflow completed"),
                    ("workflow_rejected", "Workflow rejected"),
                    ("workflow_cancelled", "Workflow cancelled"),
                    ("sla_reminder", "SLA reminder"),
                    ("sla_breached", "SLA breached"),
                    ("sla_escalated", "SLA escalated"),
                    ("approval_reset", "Approval reset"),
                    ("changes_requested", "Changes requested"),
                    ("comment_mention", "Mentioned in a comment"),
                    ("comment_added", "Comment added"),
                    ("approver_unresolved", "Approver unresolved"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="notification_type",
            field=models.CharField(
                choices=[
                    ("approval_assigned", "Approval assigned"),
                    ("approval_decided", "Approval decided"),
                    ("approval_delegated", "Approval delegated"),
                    ("workflow_completed", "Workflow completed"),
                    ("workflow_rejected", "Workflow rejected"),
                    ("workflow_cancelled", "Workflow cancelled"),
                    ("sla_reminder", "SLA reminder"),
                    ("sla_breached", "SLA breached"),
                    ("sla_escalated", "SLA escalated"),
                    ("approval_reset", "Approval reset"),
                    ("changes_requested", "Changes requested"),
                    ("comment_mention", "Mentioned in a comment"),
                    ("comment_added", "Comment added"),
                    ("approver_unresolved", "Approver unresolved"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="notificationpreference",
            name="notification_type",
            field=models.CharField(
                choices=[
                    ("approval_assigned", "Approval assigned"),
                    ("approval_decided", "Approval decided"),
                    ("approval_delegated", "Approval delegated"),
                    ("workflow_completed", "Workflow completed"),
                    ("workflow_rejected", "Workflow rejected"),
                    ("workflow_cancelled", "Workflow cancelled"),
                    ("sla_reminder", "SLA reminder"),
                    ("sla_breached", "SLA breached"),
                    ("sla_escalated", "SLA escalated"),
                    ("approval_reset", "Approval reset"),
                    ("changes_requested", "Changes requested"),
                    ("comment_mention", "Mentioned in a comment"),
                    ("comment_added", "Comment added"),
                    ("approver_unresolved", "Approver unresolved"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="events",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(
                    choices=[
                        ("approval_assigned", "Approval assigned"),
                        ("approval_decided", "Approval decided"),
                        ("approval_delegated", "Approval delegated"),
                        ("workflow_completed", "Workflow completed"),
                        ("workflow_rejected", "Workflow rejected"),
                        ("workflow_cancelled", "Workflow cancelled"),
                        ("sla_reminder", "SLA reminder"),
                        ("sla_breached", "SLA breached"),
                        ("sla_escalated", "SLA escalated"),
                        ("approval_reset", "Approval reset"),
                        ("changes_requested", "Changes requested"),
                        ("comment_mention", "Mentioned in a comment"),
                        ("comment_added", "Comment added"),
                        ("approver_unresolved", "Approver unresolved"),
                    ],
                    max_length=32,
                ),
                size=None,
            ),
        ),
    ]
