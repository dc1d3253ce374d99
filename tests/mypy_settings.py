"""The settings mypy's Django plugin loads: the test settings plus the chaos harness's app.

The plugin types ``Model.objects`` and ``settings.X`` from the apps and names it finds here,
so the chaos harness (``chaos.shop``, ``CHAOS_*``) is checked against its real models too.
"""

from chaos.settings import CHAOS_API_URL, CHAOS_DIR
from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS as TEST_APPS

INSTALLED_APPS = [*TEST_APPS, "chaos.shop"]
__all__ = ["CHAOS_API_URL", "CHAOS_DIR"]
