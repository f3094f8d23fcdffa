"""Process settings, built once (from the environment and the CLI) and passed into `create_app`.

Nothing reads these at import time: code receives a `Settings` object.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "project_path"]

_ENGINE_DIR = Path(__file__).resolve().parent


def project_path(name: str) -> Path:
    """A top-level project folder (`mappings`, `migrations`), from a checkout or a wheel install."""
    checkout = _ENGINE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    return _ENGINE_DIR / "_bundled" / name


class Settings(BaseSettings):
    """Every setting is also an environment variable with the `TURNOUT_` prefix."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 4000
    database_url: str = "sqlite+aiosqlite:///./turnout.db"
    migrate_on_start: bool = True
    # LiteLLM-format config file imported into SQL at start; None serves the default alias set.
    config: Path | None = None
    mappings_dir: Path = Field(default_factory=lambda: project_path("mappings"))
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
    # Seconds an upstream request may take, end to end (per-deployment timeouts override it).
    request_timeout: float = 600.0
    connect_timeout: float = 10.0
    # Upstream connection pool: total connections and per host.
    pool_size: int = 512
    pool_size_per_host: int = 256
    # Remote images fetched for backends that need inline images.
    image_fetch_timeout: float = 10.0
    image_fetch_max_bytes: int = 20 * 1024 * 1024
    # Seconds between asking the backends which models they serve (0: never; once at start otherwise).
    discovery_interval: float = 300.0
    # Largest audio upload accepted for transcription and translation (OpenAI's own limit is 25 MB).
    audio_max_bytes: int = 25 * 1024 * 1024
    # Seconds between reloads of the virtual keys from SQL, so keys changed by another replica or by
    # `turnout keys` take effect here (0: only at start and after this process's own admin changes).
    key_refresh_interval: float = 5.0
    # Seconds between checks for aliases and deployments changed in SQL by another process (0: never).
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
    # Seconds a stored exchange (a Responses API response kept for `previous_response_id`) can be
    # continued, counted from the turn that stored it; expired ones are deleted within the hour after.
    # 30 days, as OpenAI keeps stored responses.
    stored_response_ttl: float = Field(default=30 * 86400.0, gt=0)
    # Ask for the master key on GET /metrics (Prometheus' `authorization` setting); open by default.
    metrics_require_key: bool = False
    log_level: str = "info"
    access_log: bool = False
