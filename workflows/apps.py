from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflow configuration"

    def ready(self) -> None:
        from tenancy.roles import role_use_register
        from workflows.selectors import role_named_by_a_stage

        role_use_register(role_named_by_a_stage)
