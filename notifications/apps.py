from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from core.fanout import register_fanout
        from notifications import checks, receivers  # noqa: F401  (checks registers itself)
        from notifications.services import fanout_ctes

        receivers.connect()
        register_fanout(fanout_ctes)
