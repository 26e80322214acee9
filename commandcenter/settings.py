"""Settings, all read from the environment in this one place (see README, Configuration)."""

import os
from pathlib import Path

import environ

from core.config import (
    ConfigError,
    beat_lock_from,
    broker_url_from,
    database_from,
    postgres_options,
    redis_url_from,
    secret_key_from,
    task_limits_from,
)

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

try:
    DEBUG = env.bool("DEBUG", default=False)
except Exception:
    raise ConfigError("DEBUG", "must be true or false") from None
SECRET_KEY = secret_key_from(env, DEBUG, VAR_DIR)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ConfigError("ALLOWED_HOSTS", "required when DEBUG is off (comma-separated host names)")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATABASES = {"default": database_from(env, default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a test's Celery worker and live server share it; one per
    # test session, so that sessions running side by side don't share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Take the write lock when a transaction begins: concurrent writers (worker, web) then
    # wait for each other instead of failing at once with "database is locked".
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"].setdefault("OPTIONS", {}).update(postgres_options(env))

REDIS_URL = redis_url_from(env, default="redis://127.0.0.1:6379/0")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "auditlog",
    "channels",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "core",
    "desk",
    "inventory",
    "migration",
    "cutover",
    "training",
    "hybrid",
    "sync",
]
# The developer stack (`make run`, generated demo data): never installed in production.
DEVSTACK = env.bool("DEVSTACK", default=DEBUG)
if DEVSTACK:
    INSTALLED_APPS.append("devstack")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "core.middleware.IdleSessionMiddleware",
    "core.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "core.middleware.AxesMiddleware",
]

ROOT_URLCONF = "commandcenter.urls"
ASGI_APPLICATION = "commandcenter.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.access.roles_context",
                "core.accounts.session_context",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "core.security.MixedCharactersValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out user or address first
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Automatic logoff: a session idle this long ends (core.middleware.IdleSessionMiddleware);
# the browser warns SESSION_IDLE_WARNING_SECONDS before and offers to stay signed in.
SESSION_IDLE_TIMEOUT_MINUTES = env.float("SESSION_IDLE_TIMEOUT_MINUTES", default=15.0)
SESSION_IDLE_WARNING_SECONDS = env.int("SESSION_IDLE_WARNING_SECONDS", default=120)
SESSION_COOKIE_AGE = max(60, int(SESSION_IDLE_TIMEOUT_MINUTES * 60))
# How often an open websocket re-checks its session, user and roles (logout, expiry and
# role changes also close it at once through its session's and user's groups).
WEBSOCKET_RECHECK_SECONDS = env.float("WEBSOCKET_RECHECK_SECONDS", default=30.0)

# TLS: terminated here or by a proxy in front (SECURE_PROXY_SSL_HEADER=HEADER,VALUE).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_header:
    if len(_proxy_header) != 2:
        raise ConfigError(
            "SECURE_PROXY_SSL_HEADER", "expected HEADER,VALUE e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_header)
# Preloading is a commitment the hospital makes by submitting its domain to the browsers'
# list; the check's nudge towards it is silenced until it opts in.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# axes.W002 looks for its middleware by name; ours is that middleware, run synchronously.
SILENCED_SYSTEM_CHECKS.append("axes.W002")
# Content-Security-Policy (core.middleware): no inline script, no other origin.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)

# Lockout (django-axes): AXES_FAILURE_LIMIT failures lock the user name, and separately the
# address, for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=30.0) / 60
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
# Two-factor (django-otp, TOTP): optional; enrolled users give a code at every login.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Migration Command Center")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channels: the pub/sub layer (the default RedisChannelLayer ran out of connections at 200
# websocket consumers in our measurements; see DESIGN.md).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNEL_PREFIX", default="cc")},
    }
}

# Celery: every setting CELERY_-prefixed, read by commandcenter/celery.py.
# The broker is Redis (REDIS_URL) or RabbitMQ (CELERY_BROKER_URL=amqp://…); see the README.
CELERY_BROKER_URL = broker_url_from(env, REDIS_URL)
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = env.int("CELERY_BROKER_CONNECTION_MAX_RETRIES", default=10)
CELERY_TASK_SOFT_TIME_LIMIT, CELERY_TASK_TIME_LIMIT, CELERY_VISIBILITY_TIMEOUT = task_limits_from(
    env
)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker takes a task only when one of its processes is free (Redis brokers; RabbitMQ's
# prefetch of 1 per process is the limit there): tasks acknowledged on receipt (the
# engine's streams) would otherwise wait behind a host's busy processes while another
# host idles.
CELERY_WORKER_DISABLE_PREFETCH = CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TIMEZONE = TIME_ZONE
# Beat runs once across hosts: every beat waits for a lock in Redis (celery-redbeat), the
# holder renews it every loop, and a standby takes over when a dead holder's lock expires.
CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
CELERY_REDBEAT_REDIS_URL = REDIS_URL
CELERY_REDBEAT_KEY_PREFIX = env.str("BEAT_KEY_PREFIX", default="redbeat")
CELERY_BEAT_MAX_LOOP_INTERVAL, CELERY_REDBEAT_LOCK_TIMEOUT = beat_lock_from(env)
CELERY_BEAT_SCHEDULE = {
    "health-snapshot": {
        "task": "core.tasks.publish_health",
        "schedule": env.float("HEALTH_INTERVAL_SECONDS", default=15.0),
    },
    "cutover-probes": {
        "task": "cutover.tasks.run_scheduled_probes",
        "schedule": env.float("CUTOVER_PROBE_INTERVAL_SECONDS", default=300.0),
    },
    "cutover-live": {
        "task": "cutover.tasks.refresh_live",
        "schedule": env.float("CUTOVER_REFRESH_SECONDS", default=60.0),
    },
}
CUTOVER_QUEUE = env.str("CUTOVER_QUEUE", default="celery")  # go/no-go re-evaluations
# Alerts (core.alerts): the Celery queue of their drain, and beat's re-drain of what a lost
# task or a dead worker left pending.
ALERT_QUEUE = env.str("ALERT_QUEUE", default="celery")
CELERY_BEAT_SCHEDULE["alerts-redrain"] = {
    "task": "core.tasks.redrain_alerts",
    "schedule": env.float("ALERT_REDRAIN_SECONDS", default=30.0),
    "options": {"queue": ALERT_QUEUE},
}

REST_FRAMEWORK = {
    # Tokens (scoped, revocable: core.tokens) for systems, the session for the
    # browser; no HTTP Basic. The token class comes first so that anonymous calls get 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="1200/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PACS-to-cloud Migration Command Center API",
    "VERSION": "0.1.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # `check --deploy` is about the deployment's security; the schema's own completeness is
    # exercised by the Schemathesis run (tests/core/test_api_fuzz.py).
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}

# Audit: every model change is recorded by django-auditlog, except tables that are
# themselves logs or change too often to be worth a row per change.
AUDITLOG_INCLUDE_ALL_MODELS = True
AUDITLOG_EXCLUDE_TRACKING_MODELS = (
    "sessions",
    "admin.logentry",
    "axes.accessattempt",
    "axes.accesslog",
    "axes.accessfailurelog",
    "otp_totp.totpdevice",  # its secret key must not be copied into the audit log
    "core.apitoken",
    "auditlog.logentry",
    "core.phiaccess",
    "core.healthsample",
    "core.alert",  # the outbox of alerts: their tickets keep the story
    "cutover.proberesult",
    "cutover.baselinetask",
)

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# /healthz reuses its last answer this long (per process): polling it costs no checks.
HEALTHZ_CACHE_SECONDS = env.float("HEALTHZ_CACHE_SECONDS", default=10.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="command-center@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "pynetdicom": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# --- Uploads (issue 15): request and per-file caps (see core/uploads.py) ---
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=2621440)
UPLOAD_CAPS_MB = {
    "training_material": env.float("UPLOAD_MAX_MATERIAL_MB", default=50.0),
    "lookup_csv": env.float("UPLOAD_MAX_LOOKUP_MB", default=5.0),
    "catalogue_csv": env.float("UPLOAD_MAX_CATALOGUE_MB", default=5.0),
    "roadmap_csv": env.float("UPLOAD_MAX_ROADMAP_MB", default=5.0),
}
UPLOAD_LIST_MAX_ITEMS = env.int("UPLOAD_LIST_MAX_ITEMS", default=100000)

# --- Egress (issue 15): where destinations and probes may connect, which variables hold
# credentials (see core/egress.py). Nothing is allowed unless listed.
EGRESS_ALLOW = env.str("EGRESS_ALLOW", default="")  # "10.0.0.0/8,pacs.hospital.example"
EGRESS_SECRET_PREFIXES = env.list("EGRESS_SECRET_PREFIXES", default=["CC_SECRET_"])
EGRESS_CHECK_TIMEOUT = env.float("EGRESS_CHECK_TIMEOUT", default=60.0)  # a Check or probe task
EGRESS_MAX_BODY_BYTES = env.int("EGRESS_MAX_BODY_BYTES", default=1024 * 1024)  # probes, QIDO

# --- Migration engine (issue 4): tunables from the environment (see migration/engine.py) ---
MIGRATION_QUEUE = env.str("MIGRATION_QUEUE", default="celery")  # Celery queue of engine tasks
MIGRATION_REDIS_PREFIX = env.str("MIGRATION_REDIS_PREFIX", default="mig")
MIGRATION_STORAGE_SCP_AET = env.str("MIGRATION_STORAGE_SCP_AET", default="CCMIGRATE")
MIGRATION_STORAGE_SCP_PORT = env.int("MIGRATION_STORAGE_SCP_PORT", default=11113)
MIGRATION_STORAGE_SCP_BIND = env.str("MIGRATION_STORAGE_SCP_BIND", default="127.0.0.1")
# `manage.py storescp` hands each received instance to the study run that asked for it
# over this local socket (one SCP per worker host; see migration/storescp.py)
MIGRATION_STORAGE_SCP_SOCKET = env.str(
    "MIGRATION_STORAGE_SCP_SOCKET",
    default=str(VAR_DIR / f"storescp-{MIGRATION_STORAGE_SCP_PORT}.sock"),
)
# DICOM TLS on the Storage SCP (PEM paths): our certificate and key, and the CA whose
# client certificates (the PACS's) it accepts; unset: plain DICOM
MIGRATION_STORAGE_SCP_TLS_CERT = env.str("MIGRATION_STORAGE_SCP_TLS_CERT", default="")
MIGRATION_STORAGE_SCP_TLS_KEY = env.str("MIGRATION_STORAGE_SCP_TLS_KEY", default="")
MIGRATION_STORAGE_SCP_TLS_CA = env.str("MIGRATION_STORAGE_SCP_TLS_CA", default="")
MIGRATION_STORAGE_SCP_ASSOCIATIONS = env.int("MIGRATION_STORAGE_SCP_ASSOCIATIONS", default=32)
MIGRATION_STORAGE_SCP_ASIDE = env.str(
    "MIGRATION_STORAGE_SCP_ASIDE", default=str(VAR_DIR / "storescp-unclaimed")
)
MIGRATION_LEASE_SECONDS = env.float("MIGRATION_LEASE_SECONDS", default=120.0)
# A PACS association slot's lease (0: the study's). A host that dies leaves its
# associations open at the PACS until the PACS times them out, so its slots must not be
# reused before: longer than that (Orthanc 1.10 kept them 80 s in the 3-host test).
MIGRATION_SLOT_LEASE_SECONDS = env.float("MIGRATION_SLOT_LEASE_SECONDS", default=0.0)
MIGRATION_MAX_ATTEMPTS = env.int("MIGRATION_MAX_ATTEMPTS", default=5)
MIGRATION_RETRY_BASE_SECONDS = env.float("MIGRATION_RETRY_BASE_SECONDS", default=30.0)
MIGRATION_RETRY_MAX_SECONDS = env.float("MIGRATION_RETRY_MAX_SECONDS", default=3600.0)
MIGRATION_UPLOAD_THREADS = env.int("MIGRATION_UPLOAD_THREADS", default=8)
# More uploaders start while instances wait for a free one (a link's latency), up to this.
MIGRATION_UPLOAD_THREADS_MAX = env.int("MIGRATION_UPLOAD_THREADS_MAX", default=32)
MIGRATION_QUEUE_MB = env.int("MIGRATION_QUEUE_MB", default=64)  # received, not yet uploaded
MIGRATION_DIMSE_TIMEOUT = env.float("MIGRATION_DIMSE_TIMEOUT", default=60.0)
MIGRATION_LATENCY_BOUND_MS = env.float("MIGRATION_LATENCY_BOUND_MS", default=1500.0)
MIGRATION_TICK_SECONDS = env.float("MIGRATION_TICK_SECONDS", default=10.0)
# an S3 or folder destination (by name) for DICOMweb destinations' conflict copies,
# quarantine, manifests and copies kept aside; unset: VAR_DIR on the worker (rehearsal)
MIGRATION_DICOMWEB_SIDE_DESTINATION = env.str("MIGRATION_DICOMWEB_SIDE_DESTINATION", default="")
CELERY_BEAT_SCHEDULE["migration-tick"] = {
    "task": "migration.tasks.tick",
    "schedule": MIGRATION_TICK_SECONDS,
    "options": {"queue": MIGRATION_QUEUE},
}
CELERY_BEAT_SCHEDULE["migration-conformance"] = {
    "task": "migration.tasks.check_conformance",
    "schedule": env.float("CONFORMANCE_INTERVAL_SECONDS", default=3600.0),
}
AUDITLOG_EXCLUDE_TRACKING_MODELS += (  # the engine's ledgers change per study; they are logs
    "migration.wavestudy",
    "migration.storedinstance",
    "migration.quarantinedinstance",
)

# --- Validation (issue 5): spot-check sampling, comparison threads, availability checks ---
VALIDATION_SAMPLE_STUDIES = env.int("VALIDATION_SAMPLE_STUDIES", default=500)
VALIDATION_THREADS = env.int("VALIDATION_THREADS", default=4)  # studies at once (≤ PACS limit)
VALIDATION_COMPARE_THREADS = env.int("VALIDATION_COMPARE_THREADS", default=4)  # per study
VALIDATION_AVAILABILITY_SAMPLE = env.int("VALIDATION_AVAILABILITY_SAMPLE", default=20)
VALIDATION_AVAILABILITY_SLOW_MS = env.float("VALIDATION_AVAILABILITY_SLOW_MS", default=2000.0)
CELERY_BEAT_SCHEDULE["validation-availability"] = {
    "task": "migration.tasks.availability_check",
    "schedule": env.float("VALIDATION_AVAILABILITY_INTERVAL_SECONDS", default=900.0),
    "options": {"queue": MIGRATION_QUEUE},
}

# --- Inventory (issue 3): crawl tunables; the crawl's ledgers are logs of their own ---
INVENTORY_CRAWL_LEASE_SECONDS = env.float("INVENTORY_CRAWL_LEASE_SECONDS", default=60.0)
INVENTORY_DIMSE_TIMEOUT = env.float("INVENTORY_DIMSE_TIMEOUT", default=60.0)
INVENTORY_ECHO_TIMEOUT = env.float("INVENTORY_ECHO_TIMEOUT", default=10.0)
INVENTORY_SAMPLE_SERIES = env.int("INVENTORY_SAMPLE_SERIES", default=50)
# After the dated and timed trees, a capped crawl also walks these partitions, in order:
# patient (Patient Root walk), pid (PatientID prefixes), acc (AccessionNumber), name.
# Folders the web API may scan as a PACS's storage (the command line may scan any).
INVENTORY_SCAN_ROOTS = env.list("INVENTORY_SCAN_ROOTS", default=[])
INVENTORY_PARTITIONS = env.list("INVENTORY_PARTITIONS", default=["patient", "pid", "acc", "name"])
CELERY_BEAT_SCHEDULE["inventory-resume-crawls"] = {
    "task": "inventory.tasks.resume_stalled_crawls",
    "schedule": env.float("INVENTORY_RESUME_INTERVAL_SECONDS", default=60.0),
}
AUDITLOG_EXCLUDE_TRACKING_MODELS += (  # PHI and per-study churn; the crawl ledger is the record
    "inventory.study",
    "inventory.series",
    "inventory.crawlrun",
    "inventory.crawlrange",
    "inventory.crawlproblem",
    "inventory.growthsnapshot",
)

# --- The 24/7 command center (issue 6): escalations and monitoring run by beat ---
CELERY_BEAT_SCHEDULE["command-center-escalations"] = {
    "task": "desk.tasks.run_escalations",
    "schedule": env.float("ESCALATION_INTERVAL_SECONDS", default=60.0),
}
CELERY_BEAT_SCHEDULE["command-center-monitoring"] = {
    "task": "desk.tasks.sample_monitoring",
    "schedule": env.float("MONITORING_INTERVAL_SECONDS", default=60.0),
}
AUDITLOG_EXCLUDE_TRACKING_MODELS += (  # logs of their own, or one row a minute
    "desk.ticket",  # every change is in its own history (TicketEvent: who, before → after)
    "desk.ticketevent",
    "desk.escalation",
    "desk.notification",
    "desk.metricsample",
)

# --- The hybrid period (issue 18): the cloud → legacy bridge and its round-trip probe ---
HYBRID_SCAN_SECONDS = env.float("HYBRID_SCAN_SECONDS", default=60.0)
HYBRID_FORWARD_MAX_ATTEMPTS = env.int("HYBRID_FORWARD_MAX_ATTEMPTS", default=8)
HYBRID_FORWARD_RETRY_SECONDS = env.float("HYBRID_FORWARD_RETRY_SECONDS", default=30.0)
HYBRID_FORWARD_LEASE_SECONDS = env.float("HYBRID_FORWARD_LEASE_SECONDS", default=300.0)
HYBRID_LOCATE_LIMIT = env.int("HYBRID_LOCATE_LIMIT", default=50)
AUDITLOG_EXCLUDE_TRACKING_MODELS += ("hybrid.forward", "hybrid.roundtrip")  # logs of their own
CELERY_BEAT_SCHEDULE["hybrid-scan"] = {
    "task": "hybrid.tasks.scan_bridges",
    "schedule": HYBRID_SCAN_SECONDS,
    "options": {"queue": MIGRATION_QUEUE},
}
# --- The hybrid period (issue 18): sync mode, its lag objective, priors first over HL7 ---
# Managed waves (migration/expedite.py) run ahead of every bulk wave: urgent above sync.
MIGRATION_URGENT_PRIORITY = env.int("MIGRATION_URGENT_PRIORITY", default=2000)
MIGRATION_SYNC_PRIORITY = env.int("MIGRATION_SYNC_PRIORITY", default=1000)
SYNC_LAG_OBJECTIVE_SECONDS = env.float("SYNC_LAG_OBJECTIVE_SECONDS", default=900.0)
SYNC_EVERY_MINUTES = env.int("SYNC_EVERY_MINUTES", default=5)
# an incremental crawl asks from (high-water mark − this) on: studies dated a little late
SYNC_LOOKBACK_DAYS = env.int("SYNC_LOOKBACK_DAYS", default=1)
SYNC_TICK_SECONDS = env.float("SYNC_TICK_SECONDS", default=30.0)
HL7_HOST = env.str("HL7_HOST", default="127.0.0.1")
HL7_PORT = env.int("HL7_PORT", default=2575)
HL7_MAX_BYTES = env.int("HL7_MAX_BYTES", default=1024 * 1024)
CELERY_BEAT_SCHEDULE["sync-tick"] = {
    "task": "sync.tasks.tick",
    "schedule": SYNC_TICK_SECONDS,
    "options": {"queue": MIGRATION_QUEUE},
}
AUDITLOG_EXCLUDE_TRACKING_MODELS += (  # per-study logs of their own
    "sync.syncedstudy",
    "sync.manifestversion",
    "sync.appointmentprior",
)
