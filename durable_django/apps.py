from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DurableDjangoConfig(AppConfig):
    name = "durable_django"
    verbose_name = _("Durable workflows")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from . import checks, task_hooks
        from .conf import settings
        from .core import codec

        checks.register()
        codec.limit_payloads(lambda: settings.MAX_PAYLOAD_BYTES)
        task_hooks.install()  # imports nothing of django.tasks until a task run is met
        # As the admin discovers its admin modules; schedules may live beside the workflows.
        autodiscover_modules("workflows", "schedules")
