"""The one configuration object of the HTTP service, read from the environment at start-up.

Nothing here is built at import time: :func:`api.create_app` makes a :class:`Settings` when it is
not given one, and a bad configuration stops the service before it listens.

API keys come from configuration only: ``DISPATCH_API_KEYS`` holds comma-separated entries,
``DISPATCH_API_KEYS_FILE`` names a file of the same entries, one per line (blank lines and
``#`` comments are skipped). Exactly one of the two is set. An entry is ``key=role`` or
``key=role:tenant``:

========  ======================================================================
role      tenant
========  ======================================================================
admin     none
analyst   none
app       optional: the merchants it serves, ``|``-separated; none = every merchant
merchant  required: the merchant id
courier   required: the courier id
========  ======================================================================
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dispatch import ranges

__all__ = ["ID_PATTERN", "Principal", "Role", "Settings", "key_digest", "parse_api_keys"]

#: Merchant, courier and external ids the API accepts (and so a tenant id): the engine's id rule.
ID_PATTERN = ranges.ID_PATTERN
_ID = re.compile(ID_PATTERN)
#: Shorter keys are refused at start-up: they can be guessed.
MIN_KEY_LENGTH = 16
#: Placeholders people paste and forget; refused whatever their length.
_PLACEHOLDER_KEYS = frozenset({"changethis", "changeme", "secret", "password", "example"})


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    APP = "app"
    MERCHANT = "merchant"
    COURIER = "courier"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a role, and the tenant ids it may act for.

    ``tenants`` is empty for admin, analyst and an app serving every merchant; one merchant
    or courier id for those roles; the served merchants of a restricted app. ``key_id`` names
    the key without revealing it (the idempotency scope and logs use it).
    """

    role: Role
    tenants: frozenset[str]
    key_id: str

    @property
    def tenant(self) -> str | None:
        """The one merchant or courier id of a merchant or courier key."""
        return next(iter(self.tenants)) if self.role in (Role.MERCHANT, Role.COURIER) else None

    def serves_merchant(self, merchant_id: str) -> bool:
        """Whether this key may see and act on ``merchant_id``'s orders."""
        if self.role is Role.ADMIN:
            return True
        if self.role is Role.APP:
            return not self.tenants or merchant_id in self.tenants
        if self.role is Role.MERCHANT:
            return merchant_id in self.tenants
        return False


def key_digest(key: str) -> str:
    """Keys are looked up by digest, so the table never holds them and lookups leak no prefix."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_api_keys(entries: list[str], source: str) -> dict[str, Principal]:
    """Parse ``key=role[:tenant]`` entries into a table from key digest to :class:`Principal`.

    >>> table = parse_api_keys(["0123456789abcdef=merchant:m-17"], "example")
    >>> [(p.role.value, sorted(p.tenants)) for p in table.values()]
    [('merchant', ['m-17'])]
    >>> parse_api_keys(["short=admin"], "example")
    Traceback (most recent call last):
    ...
    ValueError: example entry 1: keys must be at least 16 characters long
    """
    table: dict[str, Principal] = {}
    for n, entry in enumerate(entries, start=1):
        where = f"{source} entry {n}"
        key, sep, grant = entry.partition("=")
        key, grant = key.strip(), grant.strip()
        if not sep or not key or not grant:
            raise ValueError(f"{where}: expected key=role or key=role:tenant")
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"{where}: keys must be at least {MIN_KEY_LENGTH} characters long")
        if key.lower() in _PLACEHOLDER_KEYS or not key.isprintable() or any(c.isspace() for c in key):
            raise ValueError(f"{where}: the key is a placeholder or holds spaces or control characters")
        role_name, _, tenant = grant.partition(":")
        try:
            role = Role(role_name.strip())
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise ValueError(f"{where}: unknown role {role_name!r} (one of {roles})") from None
        tenants = frozenset(t.strip() for t in tenant.split("|")) if tenant.strip() else frozenset()
        bad = sorted(t for t in tenants if not _ID.match(t))
        if bad:
            raise ValueError(f"{where}: tenant ids must match {ID_PATTERN}, got {bad}")
        if role in (Role.MERCHANT, Role.COURIER) and len(tenants) != 1:
            raise ValueError(
                f"{where}: a {role.value} key names exactly one {role.value} id (key={role.value}:id)"
            )
        if role in (Role.ADMIN, Role.ANALYST) and tenants:
            raise ValueError(f"{where}: an {role.value} key has no tenant")
        digest = key_digest(key)
        if digest in table:
            raise ValueError(f"{where}: the same key is listed twice")
        table[digest] = Principal(role, tenants, key_id=f"{role.value}#{digest[:12]}")
    if not table:
        raise ValueError(f"{source} lists no API keys")
    return table


def _scheme_hint(url: str) -> str:
    """What a refused Redis URL starts with, without any part that may be a secret."""
    scheme, sep, _ = url.partition("://")
    if sep and scheme.isascii() and scheme.isalnum() and len(scheme) <= 10:
        return repr(scheme + "://")
    return "no scheme"


class Settings(BaseSettings):
    """Service settings; environment variables are the field names upper-cased, prefixed ``DISPATCH_``.

    Construction fails (and the service does not start) without API keys, with both key
    sources set, or with a short, placeholder or malformed key.
    """

    # an error never shows the values it was given: they hold API keys and the Redis password
    model_config = SettingsConfigDict(
        env_prefix="DISPATCH_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    api_keys: SecretStr | None = Field(default=None, description="comma-separated key=role[:tenant]")
    api_keys_file: Path | None = Field(default=None, description="a file of key=role[:tenant], one a line")
    city: str = Field(default="default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    #: Seconds between background dispatch ticks; 0 turns the background tick off.
    tick_interval_s: float = Field(default=10.0, ge=0.0, le=3600.0)
    #: Larger request bodies are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: How long an ``Idempotency-Key`` is remembered.
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=60)
    #: A request (head and body) that has not fully arrived this long after its first byte is cut
    #: off (``dispatch serve``; see api/server_limits.py).
    request_read_timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    #: Idempotency records one API key may hold at once (429 past it).
    idempotency_max_records: int = Field(default=100_000, ge=1, le=10_000_000)
    #: Event streams one API key may hold open at once, per process (429 past it).
    event_streams_per_key: int = Field(default=8, ge=1, le=1000)
    #: An event stream connection is closed after this long; clients reconnect with Last-Event-ID.
    event_stream_max_s: float = Field(default=300.0, gt=0.0, le=3600.0)
    #: How often an open event stream looks for new events.
    event_poll_s: float = Field(default=0.5, gt=0.0, le=60.0)
    #: Problem ``type`` URIs are this prefix plus the problem code (RFC 9457).
    problem_base: str = Field(default="/problems/", pattern=r"^(https://[^\s]+|/[^\s]*)/$")
    #: Shared state in Redis (``redis://host:port/db``, ``rediss://`` or ``unix://``); unset: in-memory
    #: state in this one process.
    redis_url: SecretStr | None = Field(default=None, description="redis://host:port/db")
    #: ``DISPATCH_REDIS_URL`` names one node of a Redis Cluster (the client finds the others).
    redis_cluster: bool = False
    #: A Redis call that takes longer fails (the API answers 503) instead of hanging.
    redis_timeout_s: float = Field(default=2.0, gt=0.0, le=30.0)
    #: The dispatcher lease: a holder that stops renewing is replaced after this long.
    lease_ttl_s: float = Field(default=5.0, ge=0.5, le=120.0)
    #: Assignments are accepted for their couriers at once; false: each is first an offer the
    #: courier accepts or declines within ``offer_timeout_s`` (``DispatchConfig``'s fields).
    auto_accept: bool = True
    offer_timeout_s: int = Field(default=30, ge=1, le=3600)
    #: Supply-aware admission (``DispatchConfig.supply_admission``): an ASAP order is accepted
    #: only when some courier near the merchant can deliver it within the promise.
    supply_admission: bool = True
    #: Webhook URLs may name private, loopback and link-local addresses (tests; never in production).
    webhook_allow_private: bool = False
    #: Webhook attempts per event and endpoint (the first and its retries).
    webhook_attempts: int = Field(default=8, ge=1, le=20)
    #: The first retry waits about this long; each next one ``webhook_retry_factor`` times longer
    #: (each with +-20 % jitter). The defaults spread 8 attempts over about 24 h.
    webhook_retry_base_s: float = Field(default=60.0, gt=0.0, le=86_400.0)
    webhook_retry_factor: float = Field(default=3.15, ge=1.0, le=10.0)
    #: A webhook POST that has not answered this long counts as failed.
    webhook_timeout_s: float = Field(default=10.0, gt=0.0, le=60.0)
    #: An endpoint whose deliveries have failed for this long without a success is disabled.
    webhook_disable_after_s: float = Field(default=86_400.0, gt=0.0)
    #: A delivery taken by a worker that died is taken over after this long.
    webhook_claim_s: float = Field(default=30.0, ge=0.1, le=3600.0)
    #: How often the delivery loop looks for new events and due retries when idle.
    webhook_poll_s: float = Field(default=0.05, gt=0.0, le=10.0)
    #: Webhook POSTs in flight at once, per process.
    webhook_concurrency: int = Field(default=16, ge=1, le=1000)
    #: Signs the tracking pages' tokens; unset: a random secret kept in Redis for the city (or,
    #: over in-memory state, one made at start-up).
    tracking_secret: SecretStr | None = None
    #: The service's public URL (``https://dispatch.example.com``): tracking URLs start with it;
    #: unset, they are paths on the service.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*[^/\s])?$")

    _principals: dict[str, Principal] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _load_keys(self) -> Self:
        if (self.api_keys is None) == (self.api_keys_file is None):
            raise ValueError(
                "set exactly one of DISPATCH_API_KEYS (key=role[:tenant],...) and DISPATCH_API_KEYS_FILE"
            )
        if self.api_keys is not None:
            entries = [e for e in self.api_keys.get_secret_value().split(",") if e.strip()]
            self._principals = parse_api_keys(entries, "DISPATCH_API_KEYS")
        else:
            assert self.api_keys_file is not None
            try:
                text = self.api_keys_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"DISPATCH_API_KEYS_FILE cannot be read: {exc}") from None
            lines = [ln.strip() for ln in text.splitlines()]
            entries = [ln for ln in lines if ln and not ln.startswith("#")]
            self._principals = parse_api_keys(entries, str(self.api_keys_file))
        return self

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_redis_url(self) -> Self:
        if self.redis_url is not None:
            url = self.redis_url.get_secret_value()
            scheme, sep, _ = url.partition("://")
            if not sep or scheme not in ("redis", "rediss", "unix"):
                # the URL may hold a password: the message names the rule, never the value
                raise ValueError(
                    "DISPATCH_REDIS_URL must start with redis://, rediss:// or unix:// "
                    f"(it starts with {_scheme_hint(url)})"
                )
        return self

    def principal_for(self, key: str) -> Principal | None:
        """The principal of an API key, or ``None`` for an unknown key."""
        return self._principals.get(key_digest(key))
