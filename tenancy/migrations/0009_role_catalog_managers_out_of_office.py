"""Managers, out-of-office windows and the role catalog (seeded from the roles in use).

The catalog starts with every slug already assigned to someone or named by a stage of a
definition (name = slug), so no existing definition or assignment names an unknown role; but
``manager``, which stage approvers now read as "the contract creator's manager". Both new tables
are under row-level security like every tenant table.
"""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models

from core.rls import tenant_table_rls_sql

SEED_CATALOG = """
INSERT INTO tenancy_role (id, tenant_id, slug, name, description, created_at)
SELECT gen_random_uuid(), used.tenant_id, used.slug, used.slug, '', now()
  FROM (SELECT tenant_id, role AS slug FROM tenancy_userrole
        UNION
        SELECT d.tenant_id, entry
          FROM workflows_workflowstagedefinition s
          JOIN workflows_workflowdefinition d ON d.id = s.definition_id,
               unnest(s.approvers) AS entry
         WHERE entry NOT LIKE 'user:%%') AS used
 WHERE used.slug <> 'manager'
ON CONFLICT DO NOTHING
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0008_signed_rls_scope"),
        ("workflows", "0002_distinct_approvers_reset_on_change"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="manager",
            field=models.ForeignKey(
                blank=True,
                help_text='Same tenant, no cycles; a stage approver "manager" resolves to it.',
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="reports",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.CreateModel(
            name="OutOfOffice",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("starts_at", models.DateTimeField()),
                ("ends_at", models.DateTimeField()),
                ("note", models.CharField(blank=True, default="", max_length=500)),
                ("applied_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "cover",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="covering",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "set_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="out_of_office",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "out-of-office window",
                "indexes": [
                    models.Index(
                        condition=models.Q(("applied_at__isnull", True)),
                        fields=["tenant", "starts_at"],
                        name="ooo_unapplied_start_idx",
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("ends_at__gt", models.F("starts_at"))),
                        name="ooo_ends_after_start",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("cover", models.F("user")), _negated=True),
                        name="ooo_cover_not_self",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="Role",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("slug", models.SlugField()),
                ("name", models.CharField(max_length=100)),
                ("description", models.TextField(blank=True, default="", max_length=2000)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="tenancy.tenant",
                    ),
                ),
            ],
            options={
                "ordering": ["slug"],
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "slug"), name="role_tenant_slug_uq")
                ],
            },
        ),
        migrations.RunSQL(*tenant_table_rls_sql("tenancy_role")),
        migrations.RunSQL(*tenant_table_rls_sql("tenancy_outofoffice")),
        migrations.RunSQL(SEED_CATALOG, migrations.RunSQL.noop),
    ]
