"""All settings of ecert, in one place (pydantic-settings).

Sources, highest first: environment variables ``ECERT_*`` (plus the standard ``VAULT_ADDR``,
``VAULT_TOKEN``), then an optional TOML file named by ``ECERT_CONFIG``. Unknown ``ECERT_*``
variables and unknown keys in the file are refused, naming the setting, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from ecert.errors import ConfigurationError
from ecert.localtime import DEFAULT_ZONE, use_zone, zone_named

__all__ = ["Settings", "load_settings"]

ENV_PREFIX = "ECERT_"
_NOT_SETTINGS = {"ECERT_CONFIG", "ECERT_TEST_POSTGRES_URL"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    public_url: str = "http://127.0.0.1:8000"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    database_url: str | None = None
    auto_migrate: bool = True

    vault_addr: str | None = Field(None, validation_alias=AliasChoices("ECERT_VAULT_ADDR", "VAULT_ADDR"))
    vault_token: SecretStr | None = Field(None, validation_alias=AliasChoices("ECERT_VAULT_TOKEN", "VAULT_TOKEN"))
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    vault_transit_mount: str = "transit"
    vault_timeout: float = Field(10.0, gt=0)
    embedded_vault_port: int = Field(8200, ge=1, le=65534)

    ca_organization: str = Field("Example Province Government", min_length=1, max_length=40)
    ca_country: str = Field("CN", pattern=r"^[A-Z]{2}$")

    blob_store: Literal["database", "filesystem", "s3"] = "database"
    blob_dir: Path | None = None  # filesystem blobs; default <data_dir>/blobs
    s3_endpoint_url: str | None = Field(None, pattern=r"^https?://", description="None: AWS's own endpoint")
    s3_bucket: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    s3_region: str = Field("us-east-1", min_length=1)
    s3_access_key_id: str | None = None  # None with no secret: boto3's chain (AWS_* variables, instance role)
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = Field("", pattern=r"^/?([A-Za-z0-9][A-Za-z0-9_.-]*/?)*$", max_length=100)
    s3_path_style: bool = True  # MinIO, Ceph RGW; false for virtual-hosted buckets (AWS)
    s3_timeout: float = Field(10.0, gt=0)

    demo: bool = True
    max_upload_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_json_bytes: int = Field(16 * 1024 * 1024, gt=0, description="largest JSON request body, refused unparsed")
    verify_rate_per_second: float = Field(10.0, gt=0, description="public verification lookups per client IP")
    verify_burst: int = Field(60, ge=1)
    verify_lookup_threads: int = Field(
        2, ge=1, le=64, description="batches of link lookups each worker reads from the database at a time (one "
        "thread each): few, because more threads only contend for the interpreter lock while the reads are short")
    login_rate_per_second: float = Field(0.5, gt=0, description="login and registration attempts per client IP")
    login_burst: int = Field(20, ge=1)
    rate_limit_sync_seconds: float = Field(1.0, gt=0, le=60, description="how often workers merge shared rate-limit counts")
    login_queue: int = Field(0, ge=0, le=10_000, description="logins in progress per worker before more are shed "
                             "with 503; 0: the measured login rate x login_latency_target_seconds")
    login_latency_target_seconds: float = Field(1.5, gt=0, le=60, description="typical wait of an admitted login; sizes login_queue")
    verify_timeout_seconds: float = Field(30.0, gt=0, description="cap on one PDF verification")
    time_zone: str = Field(DEFAULT_ZONE, description="IANA zone in which people read times (portal, counter, "
                           "verification page, PDF), always labelled with its offset; stored times are UTC")
    issue_queue: int = Field(64, ge=1, le=10_000, description="single issuances admitted per worker (being prepared, "
                             "queued or in a batch) before more are refused at once with 503 issuance-busy; each waits "
                             "in a request thread, and a worker has issue_queue + 40 of them, so other routes keep 40")
    issue_concurrency: int = Field(4, ge=1, le=64, description="issuing transactions (batches) a worker runs at a time; "
                                   "each holds one database connection and briefly a second for its serial numbers")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("ECERT_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_named(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.vault_addr and not (self.vault_token or (self.vault_role_id and self.vault_secret_id)):
            raise ValueError("vault_addr is set: also set vault_token or vault_role_id + vault_secret_id")
        if self.blob_store == "s3" and not self.s3_bucket:
            raise ValueError("blob_store is s3: also set s3_bucket")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("set both s3_access_key_id and s3_secret_access_key, or neither")
        if self.environment == "production":
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise ValueError("production needs database_url pointing at PostgreSQL")
            if self.vault_addr is None:
                raise ValueError("production needs an external Vault (vault_addr)")
            if self.demo:
                raise ValueError("demo must be false in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ecert.db').resolve()}"

    @property
    def embedded_vault(self) -> bool:
        return self.vault_addr is None


def _unknown_env() -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known | _NOT_SETTINGS)


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; raise :class:`ConfigurationError` naming what is wrong.

    The process then shows times in ``time_zone`` (:func:`ecert.localtime.use_zone`): server and commands
    alike start here.
    """
    unknown = _unknown_env()
    if unknown:
        raise ConfigurationError(f"unknown setting(s): {', '.join(unknown)}")
    try:
        settings = Settings(**overrides)
        use_zone(settings.time_zone)
        return settings
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from exc
    except (OSError, ValueError) as exc:  # unreadable or corrupt TOML file
        raise ConfigurationError(f"cannot read the configuration file: {exc}") from exc
