"""Decide from e-mail: personal approval links, under row-level security.

A link is opened before any tenant is known (the page has no login), so the owner's SECURITY
DEFINER function ``app_approval_link_tenant`` answers one question: the tenant of the link whose
token has this SHA-256. Everything else is read in that tenant's scope, as the app role.
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

TABLE = "approvals_approvallink"
TENANT = "tenant_id = (SELECT app_current_tenant())"

FORWARD = f"""
ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {TABLE} USING ({TENANT}) WITH CHECK ({TENANT});

-- Opening a link: the tenant of the link with this token digest (hex SHA-256), nothing else.
CREATE FUNCTION public.app_approval_link_tenant(digest text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT l.tenant_id FROM public.{TABLE} l WHERE l.token_hash = $1
$$;
REVOKE ALL ON FUNCTION public.app_approval_link_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.app_approval_link_tenant(text) TO {{app}};
"""  # noqa: S608 (a table name and a constant condition)
BACKWARD = f"""
DROP FUNCTION public.app_approval_link_tenant(text);
DROP POLICY tenant_isolation ON {TABLE};
"""


def forward(apps, schema_editor):
    schema_editor.execute(FORWARD.format(app=schema_editor.quote_name(settings.DATABASE_APP_ROLE)))


def backward(apps, schema_editor):
    schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0005_sla_rule_verbose_names"),
        ("tenancy", "0008_signed_rls_scope"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApprovalLink",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "token_hash",
                    models.CharField(help_text="SHA-256, hex.", max_length=64, unique=True),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "approval",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="approvals.workflowstageapproval",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["tenant", "expires_at"], name="approvallink_expiry_idx")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("approval", "user"), name="approvallink_one_per_person"
                    )
                ],
            },
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
