"""The YAML config, validated at start with errors that name the key and line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crossroute.providers import KINDS
from crossroute.providers.presets import PRESETS
from crossroute.upstream_proxy import DIRECT, UnusableProxy, parse_proxy

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
Strategy = Literal["round-robin", "fill-first", "least-busy", "weighted", "sticky"]


class ConfigError(Exception):
    """A config problem, worded for the person who wrote the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEntry(_Strict):
    name: str = Field(min_length=1)
    alias: str | None = None
    upstream: str | None = None  # the name to send upstream, when it differs from `name`


class ProviderConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    preset: str | None = None
    base_url: str | None = None
    api_keys: list[str] = Field(default_factory=list)
    models: list[ModelEntry] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=600.0, gt=0)
    proxy: str | None = None  # http://[user:pass@]host:port; "" or "direct": none; unset: the environment's
    strategy: Strategy | None = None  # overrides routing.strategy for this provider's accounts

    @field_validator("proxy")
    @classmethod
    def _usable_proxy(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() not in DIRECT:
            try:
                parse_proxy(value)
            except UnusableProxy as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _models_from_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown provider kind {value!r}; expected one of {', '.join(sorted(KINDS))}")
        return value

    @model_validator(mode="after")
    def _fill_from_preset(self) -> ProviderConfig:
        preset_name = self.preset or (self.name if self.name in PRESETS else None)
        if self.preset and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {', '.join(sorted(PRESETS))}")
        preset = PRESETS.get(preset_name or "")
        if preset and preset.kind == self.kind:
            if self.base_url is None:
                self.base_url = preset.base_url
            if not self.models:
                self.models = [ModelEntry(name=m) for m in preset.models]
        if self.base_url is None:
            default = KINDS[self.kind].default_base_url
            if default is None:
                raise ValueError(f"base_url is required for kind {self.kind!r}")
            self.base_url = default
        self.base_url = self.base_url.rstrip("/")
        return self


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8317, ge=0, le=65535)
    api_keys: list[str] = Field(default_factory=list)
    allow_unauthenticated_remote: bool = False
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    workers: int | None = Field(default=None, ge=1)
    access_log: bool = True  # one line per request on stderr, at any --log-level
    log_format: Literal["text", "json"] = "text"
    # Limits on what a client may send (defaults like nginx's).
    head_timeout_seconds: float = Field(default=60.0, gt=0)  # first byte of a request to the end of its head
    body_timeout_seconds: float = Field(default=60.0, gt=0)  # longest pause between two reads of a body
    keep_alive_seconds: float = Field(default=75.0, gt=0)  # an idle connection is closed after this
    max_head_bytes: int = Field(default=64 * 1024, ge=1024)
    max_headers: int = Field(default=100, ge=8)
    max_url_bytes: int = Field(default=8 * 1024, ge=256)
    max_connections: int = Field(default=1024, ge=1)  # per worker; also bounded by the open-files limit
    # Browsers and DNS rebinding: which web origins and Host names may use the gateway.
    cors_origins: list[str] = Field(default_factory=list)
    allowed_hosts: list[str] = Field(default_factory=list)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)  # in-flight requests get this long on SIGTERM


class RoutingConfig(_Strict):
    strategy: Strategy = "round-robin"
    max_attempts: int = Field(default=3, ge=1, le=20)  # upstream calls per model and request, before fallbacks
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)  # model -> models to try next, in order


class StateConfig(_Strict):
    backend: Literal["sqlite"] = "sqlite"
    path: str | None = None  # default: the user's data dir
    response_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    providers: list[ProviderConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for provider in self.providers:
            if provider.name in seen:
                raise ValueError(f"two providers are named {provider.name!r}")
            seen.add(provider.name)
        return self

    def check_bind(self) -> None:
        """No client keys means loopback only, unless the user says otherwise."""
        server = self.server
        if not server.api_keys and server.host not in LOOPBACK_HOSTS and not server.allow_unauthenticated_remote:
            raise ConfigError(
                f"server.host is {server.host!r} but server.api_keys is empty: anyone who can reach this "
                "address could use your providers. Set server.api_keys, bind to 127.0.0.1, or set "
                "server.allow_unauthenticated_remote: true"
            )


def load_config(path: str | Path) -> Config:
    text = Path(path).read_text(encoding="utf-8")
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (server:, providers:, ...)")
    data = _expand_env(data)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, node, source)) from None


def _expand_env(value: Any) -> Any:
    """`${VAR}` in a string takes the environment variable's value (keys stay out of the file)."""
    if isinstance(value, str):
        return os.path.expandvars(value) if "${" in value else value
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    return value


def _describe_errors(exc: ValidationError, root: yaml.Node | None, source: str) -> str:
    lines = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}: {key or '(top level)'}: {message}")
    return "invalid config:\n  " + "\n  ".join(lines)


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            return line
        node, line = child, child.start_mark.line + 1
    return line
