from __future__ import annotations

from django.apps import AppConfig


class DurableDjangoConfig(AppConfig):
    name = "durable_django"
    verbose_name = "Durable workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, registry

        checks.register()
        registry.autodiscover()
