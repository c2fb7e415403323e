from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Documents and signatures"

    def ready(self) -> None:
        from documents import receivers

        receivers.connect()
