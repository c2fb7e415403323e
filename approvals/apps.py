from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals and SLAs"

    def ready(self) -> None:
        from approvals.sla import state

        state.connect()
