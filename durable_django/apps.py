from __future__ import annotations

from django.apps import AppConfig


class DurableDjangoConfig(AppConfig):
    name = "durable_django"
    verbose_name = "Durable workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from . import checks, task_hooks

        checks.register()
        task_hooks.install()  # imports nothing of django.tasks until a task run is met
        autodiscover_modules("workflows")  # as the admin discovers its admin modules
