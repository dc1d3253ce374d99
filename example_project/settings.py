"""Settings read from the environment (django-environ).

With nothing set, everything is embedded: SQLite and Celery's filesystem broker, so the
demo runs the same worker code as production without any server.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("DEMO_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env(DEBUG=(bool, True))

SECRET_KEY = env.str("SECRET_KEY", default="insecure-example-key-change-me")
DEBUG = env("DEBUG")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "durable_django",
    "example_project.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A worker and a web process share the file: wait for the write lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT = "durable_django.filesystem_transport:Transport"  # messages written whole
    (_queue_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),  # kombu's default is "control" in the current directory
        "store_processed": False,
        "polling_interval": env.float("FILESYSTEM_BROKER_POLL", default=0.1),
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# durable_django's recovery timers (these are its defaults); the demo shortens them so that a
# step whose worker was killed is taken over in seconds rather than after a production-size wait.
DURABLE_SWEEP_INTERVAL = env.float("DURABLE_SWEEP_INTERVAL", default=2.0)
DURABLE_REPUBLISH_AFTER = env.float("DURABLE_REPUBLISH_AFTER", default=15.0)
DURABLE_LEASE_GRACE = env.float("DURABLE_LEASE_GRACE", default=10.0)

# Where the fake payment provider keeps its ledger: outside the app's database on purpose.
PAYMENTS_LEDGER = env.str("PAYMENTS_LEDGER", default=str(VAR_DIR / "payments-ledger.sqlite3"))
PAYMENTS_LATENCY = env.float("PAYMENTS_LATENCY", default=0.05)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"durable_django": {"handlers": ["console"], "level": env.str("DURABLE_LOG_LEVEL", default="WARNING")}},
}
