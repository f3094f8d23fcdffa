"""Process settings, built once (from the environment and the CLI) and passed into `create_app`.

Nothing reads these at import time: code receives a `Settings` object.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.netguard import AddressPolicy

__all__ = ["Settings", "project_path"]

_ENGINE_DIR = Path(__file__).resolve().parent


def project_path(name: str) -> Path:
    """A top-level project folder (`mappings`, `migrations`): in an installed wheel, the copy bundled in
    the package (pyproject.toml's force-include); in a checkout (editable install included), the folder
    beside `engine/`. The bundled copy comes first: beside an installed `engine/` is site-packages, where
    another distribution may have put a folder of the same name."""
    bundled = _ENGINE_DIR / "_bundled" / name
    if bundled.is_dir():
        return bundled
    return _ENGINE_DIR.parent / name


class Settings(BaseSettings):
    """Every setting is also an environment variable with the `TURNOUT_` prefix."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 4000
    database_url: str = "sqlite+aiosqlite:///./turnout.db"
    migrate_on_start: bool = True
    # LiteLLM-format config file imported into SQL at start; None serves the default alias set.
    config: Path | None = None
    # The base mappings folder: the bundled one unless set (then it replaces it whole, as it always did).
    mappings_dir: Path = Field(default_factory=lambda: project_path("mappings"))
    # One's own mapping folders, read on top of `mappings_dir` in order: a later folder's provider,
    # dialect or models file replaces an earlier one's of the same name (engine.mapping.folders).
    # TURNOUT_MAPPINGS_PATH lists them separated by os.pathsep (":" on Unix), like PATH.
    mappings_path: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # Seconds between looks at the mapping folders and the --config file for changes, reloaded when
    # valid (engine.reload); 0: never (a restart picks changes up).
    reload_interval: float = Field(default=1.0, ge=0)
    # Bearer key required on every API call when set (general_settings.master_key in a config sets it too).
    master_key: str | None = Field(
        default=None, validation_alias=AliasChoices("TURNOUT_MASTER_KEY", "LITELLM_MASTER_KEY")
    )
    # Secret from which the key that encrypts provider credentials in SQL is derived.
    salt_key: str | None = Field(
        default=None, validation_alias=AliasChoices("TURNOUT_SALT_KEY", "LITELLM_SALT_KEY")
    )
    # Drop request parameters a backend does not support (with a warning header) instead of a 400.
    drop_params: bool = False
    # The `model` answers name: "alias", the name the client asked for (a gateway hides its backends),
    # or "upstream", the backend's own (what its mapping says), on every route.
    response_model: Literal["alias", "upstream"] = "alias"
    # Seconds an upstream request may take, end to end (per-deployment timeouts override it).
    request_timeout: float = 600.0
    connect_timeout: float = 10.0
    # Upstream connection pool: total connections and per host.
    pool_size: int = 512
    pool_size_per_host: int = 256
    # Remote images fetched for backends that need inline images: seconds and bytes for one image, how
    # many images and how many bytes in all for one request (0 images: none is fetched). Only public
    # addresses are fetched; `image_fetch_allow` lets more through: host names and networks (CIDR),
    # comma-separated, e.g. "images.internal,10.20.0.0/16".
    image_fetch_timeout: float = 10.0
    image_fetch_max_bytes: int = 20 * 1024 * 1024
    image_fetch_max_images: int = Field(default=16, ge=0)
    image_fetch_max_total_bytes: int = Field(default=50 * 1024 * 1024, ge=0)
    image_fetch_allow: str = ""
    # Seconds between asking the backends which models they serve (0: never; once at start otherwise).
    discovery_interval: float = 300.0
    # Largest audio upload accepted for transcription and translation (OpenAI's own limit is 25 MB).
    audio_max_bytes: int = 25 * 1024 * 1024
    # Largest request body (413 beyond): OpenAI's own limit for a request with images is 50 MB, and
    # base64 makes a picture a third larger. Audio uploads may be up to audio_max_bytes (+1 MiB of form).
    max_request_body_bytes: int = 50 * 1024 * 1024
    # Bytes of request bodies over 64 KiB that one process holds at once (a body counts from its first
    # byte until its answer has ended); a body that does not fit gets a 503 with retry-after: 1.
    request_body_budget_bytes: int = 128 * 1024 * 1024
    # Largest whole (non-stream) upstream answer, and largest single event of an upstream stream: beyond
    # them the answer is an upstream error (502; before anything reached the client, the next deployment).
    max_upstream_answer_bytes: int = 64 * 1024 * 1024
    max_stream_event_bytes: int = 16 * 1024 * 1024
    # Seconds between reloads of the virtual keys from SQL (0: never). Changes made through this process
    # apply at once, and so do other replicas' when they share `redis_url` (a change notice); the reload
    # catches the rest: `turnout keys`, and replicas without Redis.
    key_refresh_interval: float = 5.0
    # The same for aliases, deployments and router settings: the reload catches `turnout import`,
    # `turnout probe --write`, `turnout serve --config` on another process, and replicas without Redis.
    routes_refresh_interval: float = 5.0
    # Redis shared by every replica: per-key rate-limit and budget counters, and change notices (keys,
    # routes, cooldowns) that reach the other replicas at once. None: counters live in this process.
    redis_url: str | None = None
    redis_prefix: str = "turnout:"  # prefix of every Redis key and channel Turnout uses
    # The usage recorder writes the request log in batches: at most every this many seconds, or sooner
    # when `usage_batch_size` rows wait. While the database is unreachable, up to `usage_buffer_limit`
    # rows are kept and retried.
    usage_flush_interval: float = 0.5
    usage_batch_size: int = 500
    usage_buffer_limit: int = 100_000
    # Seconds `turnout serve` waits after SIGTERM for the requests in progress. Event streams still
    # running then end with a `server_shutting_down` error event (and a 503 row); any other request
    # still running is cut by the server 2 s later.
    shutdown_grace: float = Field(default=30.0, ge=0)
    # Send the headers that show the backends (x-turnout-deployment, -deployment-id, -attempted, -fallback,
    # x-litellm-model-id) to virtual keys too; by default only the master key (or an open gateway) gets them.
    topology_headers_for_keys: bool = False
    # Seconds a stored exchange (a Responses API response kept for `previous_response_id`) can be
    # continued, counted from the turn that stored it; expired ones are deleted within the hour after.
    # 30 days, as OpenAI keeps stored responses.
    stored_response_ttl: float = Field(default=30 * 86400.0, gt=0)
    # Ask for the master key on GET /metrics (Prometheus' `authorization` setting); open by default.
    metrics_require_key: bool = False
    # Seconds a rendered /metrics answer is served again before it is rendered anew (0: every scrape):
    # rendering costs milliseconds per configured alias, so a scrape loop costs one render per this.
    metrics_max_age: float = 1.0
    # OpenTelemetry traces (README "Tracing"): on with TURNOUT_OTEL=true, or when OTEL_TRACES_EXPORTER names
    # an exporter; OTEL_SDK_DISABLED=true turns them off. The SDK reads the other OTEL_* variables itself.
    otel: bool = False
    otel_traces_exporter: str | None = Field(default=None, validation_alias="OTEL_TRACES_EXPORTER")
    otel_sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    log_level: str = "info"
    access_log: bool = False
    # Logs (engine/logs): "text", one readable line per event, or "json", one object per line for log
    # shippers; every line written while handling a request carries its id, and no line a credential.
    log_format: Literal["text", "json"] = "text"
    # The admin console (engine/console): served at `ui_path` by the same process unless turned off.
    ui_enabled: bool = True
    ui_path: str = "/ui"
    # A console user whose password comes from the environment (beside those `turnout admin
    # set-password` stores hashed in SQL). No default password: without one, only the master key opens it.
    admin_user: str = "admin"
    admin_password: str | None = None
    # Seconds a console session lasts after sign-in.
    ui_session_ttl: float = Field(default=8 * 3600.0, gt=0)
    # Failed sign-ins: each answer waits this many seconds; after `ui_max_failed_sign_ins` failures
    # from one client address within `ui_lockout_seconds`, that address is refused until the window ends.
    ui_sign_in_delay: float = Field(default=1.0, ge=0)
    ui_max_failed_sign_ins: int = Field(default=5, ge=1)
    ui_lockout_seconds: float = Field(default=900.0, gt=0)
    # The response cache (engine/cache; LiteLLM's `litellm_settings.cache` and `cache_params` set these
    # too). Off by default. `cache_type` local: each process's own bounded LRU; redis: one cache for
    # every replica, at `cache_redis_url` (else `redis_url`). `cache_scope` key: each virtual key
    # (or a key's `cache_namespace` metadata, shared by the keys that name it) has its own entries;
    # shared: every caller shares them, as LiteLLM does.
    cache: bool = False
    cache_type: Literal["local", "redis"] = "local"
    cache_ttl: float = Field(default=600.0, gt=0)  # seconds an answer is kept, unless a request says
    cache_max_ttl: float = Field(default=86400.0, gt=0)  # the longest `cache.ttl` a request may ask for
    cache_namespace: str = ""  # a prefix of every entry's key (LiteLLM's cache_params.namespace)
    cache_call_types: str = "chat,completions,embeddings"  # operations cached, comma-separated
    cache_scope: Literal["key", "shared"] = "key"
    cache_redis_url: str | None = None
    cache_max_entries: int = Field(default=1000, ge=1)  # local: entries kept, least recently used go
    cache_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)  # local: bytes of all entries
    cache_max_entry_bytes: int = Field(default=1024 * 1024, ge=1)  # a larger answer is not cached

    @property
    def mapping_folders(self) -> tuple[Path, ...]:
        """Every mapping folder, earliest (lowest precedence) first."""
        return (self.mappings_dir, *self.mappings_path)

    @field_validator("mappings_path", mode="before")
    @classmethod
    def _mappings_path(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment
            return [Path(part) for part in value.split(os.pathsep) if part]
        return value

    @field_validator("mappings_path")
    @classmethod
    def _own_folders_exist(cls, value: list[Path]) -> list[Path]:
        for folder in value:
            if not folder.is_dir():
                raise ValueError(f"mapping folder {str(folder)!r} is not a folder")
        return value

    @field_validator("ui_path")
    @classmethod
    def _ui_path(cls, value: str) -> str:
        path = "/" + value.strip("/")
        if path == "/" or path.startswith(("/v1", "/health", "/metrics", "/turnout")):
            raise ValueError(f"ui_path {value!r} would hide the API; pick a path like /ui or /admin")
        return path

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().lower()
        if level not in ("debug", "info", "warning", "error", "critical"):
            raise ValueError(f"log_level {value!r} is not one of debug, info, warning, error, critical")
        return level

    @field_validator("image_fetch_allow")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        AddressPolicy.parse(value)  # a bad entry fails at start, named
        return value
