from __future__ import annotations

from django.apps import AppConfig


class DurableDjangoConfig(AppConfig):
    name = "durable_django"
    verbose_name = "Durable workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from . import checks

        checks.register()
        # As the admin discovers its admin modules; schedules may live beside the workflows.
        autodiscover_modules("workflows", "schedules")
