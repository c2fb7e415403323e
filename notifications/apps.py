from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from notifications import checks, receivers  # noqa: F401  (checks registers itself)

        receivers.connect()
