from django.apps import AppConfig


class ConformanceConfig(AppConfig):
    """Installed in the test settings so every worker imports :mod:`.workflows` (durable_django autodiscovers it)."""

    name = "tests.conformance"
    label = "conformance"
    default_auto_field = "django.db.models.BigAutoField"
