from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenants and users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from core.rls_key import store_after_migrate
        from tenancy import checks, schema  # noqa: F401  (registers system checks and schema hooks)

        post_migrate.connect(store_after_migrate, sender=self)


class AdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with this project's site (``tenancy.admin_site.AdminSite``)."""

    default = False  # named in INSTALLED_APPS; "tenancy" itself stays TenancyConfig
    default_site = "tenancy.admin_site.AdminSite"
