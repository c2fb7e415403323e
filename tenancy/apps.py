from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenants and users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenancy import checks, schema  # noqa: F401  (registers system checks and schema hooks)
