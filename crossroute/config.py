"""The YAML config, validated at start with errors that name the key and line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crossroute.kinds import (
    COMING_LOGIN_KINDS,
    DEFAULT_BASE_URLS,
    LOGIN_KINDS,
    PRESETS,
    REGIONS,
    Preset,
    Region,
)
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


class Timeouts(_Strict):
    """Seconds. Reasoning models think silently before their first byte (a
    non-streamed answer's head comes only once it is all written), and a
    streamed one may pause as long mid-way; the idle default is Codex CLI's
    stream idle timeout, so the gateway gives up no sooner than that client."""

    connect: float = Field(default=15.0, gt=0)  # TCP + TLS (+ proxy tunnel) to the upstream
    first_byte: float = Field(default=600.0, gt=0)  # request sent -> the answer's status and headers
    idle: float = Field(default=300.0, gt=0)  # the longest pause between two reads of the answer's body


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token


def _breaks_a_header(text: str) -> bool:
    """Text that would end a header line early or smuggle another one in."""
    return any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in text)


class ProviderConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    preset: str | None = None
    base_url: str | None = None
    auth_url: str | None = None  # login kinds: the OAuth server's base (default: the real service)
    api_keys: list[str] = Field(default_factory=list)
    models: list[ModelEntry] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0)  # the old name of timeouts.first_byte
    timeouts: Timeouts = Field(default_factory=lambda: Timeouts())
    proxy: str | None = None  # http://[user:pass@]host:port; "" or "direct": none; unset: the environment's
    excluded_models: list[str] = Field(default_factory=list)  # globs: hidden from /v1/models and from routing
    # login kinds: seconds between fetches of the provider's live model list (used when `models:` is not set)
    models_refresh: float = Field(default=3600.0, gt=0)
    region: str | None = None  # kinds with regional hosts (codebuddy: intl | cn); base_url / auth_url win over it
    _base_url_configured: bool = PrivateAttr(default=False)
    _models_configured: bool = PrivateAttr(default=False)

    @property
    def base_url_configured(self) -> bool:
        """Whether the config set base_url (it then wins over a login's per-account resource URL)."""
        return self._base_url_configured

    @property
    def preset_entry(self) -> Preset | None:
        """The preset this provider takes its defaults from: the one `preset:` names, else the one
        its name is (when the kinds agree)."""
        preset = PRESETS.get(self.preset or self.name)
        return preset if preset is not None and preset.kind == self.kind else None

    @property
    def models_configured(self) -> bool:
        """Whether the config listed `models:` (for a login kind it then wins over the live list)."""
        return self._models_configured

    @property
    def is_login(self) -> bool:
        """A login provider: its accounts come from `crossroute login`, in the auth dir."""
        return self.kind in LOGIN_KINDS

    @property
    def api_keys_allowed(self) -> bool:
        """Whether API keys serve this provider: every kind but the login kinds that take logins only."""
        login = LOGIN_KINDS.get(self.kind)
        return login is None or login.api_keys

    def excludes(self, model: str) -> bool:
        """Whether `excluded_models` hides this model (as `provider/model` asks for it)."""
        if not self.excluded_models:
            return False
        return self._matches_exclusion(model) or any(entry.name == model and self.hides(entry) for entry in self.models)

    def hides(self, entry: ModelEntry) -> bool:
        """Whether `excluded_models` hides a listed model, by its name or its upstream name."""
        return self._matches_exclusion(entry.name) or (entry.upstream is not None
                                                       and self._matches_exclusion(entry.upstream))

    def _matches_exclusion(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.excluded_models)

    @field_validator("timeouts")
    @classmethod
    def _first_byte_once(cls, value: Timeouts, info: ValidationInfo) -> Timeouts:
        if info.data.get("timeout") is not None and "first_byte" in value.model_fields_set:
            raise ValueError("timeout is the old name of timeouts.first_byte: set one of them, not both")
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_fit_a_header(cls, value: list[str]) -> list[str]:
        if any(_breaks_a_header(key) for key in value):
            raise ValueError("an API key holds a control character (a line break?); it would corrupt the request")
        return value

    @field_validator("headers")
    @classmethod
    def _headers_fit_a_request(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if _breaks_a_header(text):
                raise ValueError(f"the value of header {name!r} holds a control character (a line break?)")
        return value
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
        if value in COMING_LOGIN_KINDS:
            raise ValueError(f"kind {value!r}: {COMING_LOGIN_KINDS[value]} (see crossroute login --list)")
        if value not in DEFAULT_BASE_URLS:
            raise ValueError(f"unknown provider kind {value!r}; expected one of {', '.join(sorted(DEFAULT_BASE_URLS))}")
        return value

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if value is None or kind is None:  # a bad kind has its own error
            return value
        regions = REGIONS.get(kind)
        if regions is None:
            raise ValueError(f"region is only for kinds with regional hosts ({', '.join(sorted(REGIONS))})")
        if value not in regions:
            raise ValueError(f"unknown region {value!r} for kind {kind}; expected one of {', '.join(regions)}")
        return value

    @property
    def region_entry(self) -> Region | None:
        """The hosts of this provider's region (the kind's first region when `region:` is not set)."""
        regions = REGIONS.get(self.kind)
        if regions is None:
            return None
        return regions[self.region] if self.region else next(iter(regions.values()))

    @model_validator(mode="after")
    def _fill_from_preset(self) -> ProviderConfig:
        if self.timeout is not None:
            self.timeouts.first_byte = self.timeout
        self._base_url_configured = self.base_url is not None
        self._models_configured = bool(self.models)
        self._fill_login_defaults()
        if self.preset and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {', '.join(sorted(PRESETS))}")
        preset = self.preset_entry
        if preset:
            if self.base_url is None:
                self.base_url = preset.base_url
            if not self.models:
                self.models = [ModelEntry(name=m) for m in preset.models]
        if self.base_url is None and self.region_entry is not None:
            self.base_url = self.region_entry.base_url
        if self.base_url is None:
            default = DEFAULT_BASE_URLS[self.kind]
            if default is None:
                raise ValueError(f"base_url is required for kind {self.kind!r}")
            self.base_url = default
        self.base_url = self.base_url.rstrip("/")
        return self

    def _fill_login_defaults(self) -> None:
        login = LOGIN_KINDS.get(self.kind)
        if login is None:
            misplaced = "auth_url" if self.auth_url is not None else \
                "models_refresh" if "models_refresh" in self.model_fields_set else None
            if misplaced:
                raise ValueError(f"{misplaced} is only for login kinds ({', '.join(sorted(LOGIN_KINDS))})")
            return
        if self.api_keys and not self.api_keys_allowed:
            raise ValueError(f"a {self.kind} provider's accounts come from `crossroute login {self.name}`, "
                             "not api_keys")
        region = self.region_entry
        self.auth_url = (self.auth_url or (region.auth_url if region else login.auth_url)).rstrip("/")
        if not self.models:
            self.models = [ModelEntry(name=m) for m in login.models]


class PayloadMatch(_Strict):
    models: list[str] = Field(default_factory=list)  # globs on the upstream name or the name asked for; none: all
    providers: list[str] = Field(default_factory=list)  # provider names; none: all


class PayloadRule(_Strict):
    """Edits of the body sent upstream, in the provider's format; keys are
    top-level fields or dotted paths (`generationConfig.maxOutputTokens`)."""

    match: PayloadMatch = Field(default_factory=PayloadMatch)
    defaults: dict[str, Any] = Field(default_factory=dict)  # set when absent
    overrides: dict[str, Any] = Field(default_factory=dict)  # always set
    caps: dict[str, Any] = Field(default_factory=dict)  # a number above the cap is lowered to it
    remove: list[str] = Field(default_factory=list)  # deleted

    @field_validator("defaults", "overrides", "caps")
    @classmethod
    def _usable_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            _check_payload_path(key)
        return value

    @field_validator("remove")
    @classmethod
    def _usable_removals(cls, value: list[str]) -> list[str]:
        for key in value:
            _check_payload_path(key)
        return value

    @field_validator("caps")
    @classmethod
    def _numeric_caps(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, cap in value.items():
            if isinstance(cap, bool) or not isinstance(cap, int | float):
                raise ValueError(f"the cap for {key!r} must be a number, not {cap!r}")
        return value


_GATEWAY_FIELDS = frozenset({"model", "stream"})  # what the gateway itself sets from the request and route


def _check_payload_path(key: str) -> None:
    if any(not part for part in key.split(".")):
        raise ValueError(f"{key!r} is not a field name or dotted path (like generationConfig.maxOutputTokens)")
    if key in _GATEWAY_FIELDS:
        raise ValueError(f"{key!r} is set by the gateway from the request and route; a payload rule cannot change it")


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


def _default_auth_dir() -> str:
    from crossroute.defaults import data_dir  # defaults imports this module

    return str(data_dir() / "auth")


class RoutingConfig(_Strict):
    strategy: Strategy = "round-robin"
    max_attempts: int = Field(default=3, ge=1, le=20)  # upstream calls per model and request, before fallbacks
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)  # model -> models to try next, in order


class StateConfig(_Strict):
    backend: Literal["sqlite"] = "sqlite"
    path: str | None = None  # default: the user's data dir
    response_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    auth_dir: str = Field(default_factory=_default_auth_dir, min_length=1)  # one JSON file per account

    @field_validator("auth_dir")
    @classmethod
    def _expand_home(cls, value: str) -> str:
        return os.path.expanduser(value)


def _served(name: str, providers: list[ProviderConfig]) -> bool:
    provider_name, slash, rest = name.partition("/")
    if slash and rest and any(p.name == provider_name for p in providers):
        return True
    return any(name in (entry.name, entry.alias) for p in providers for entry in p.models if not p.hides(entry))


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    providers: list[ProviderConfig] = Field(default_factory=list)
    payload: list[PayloadRule] = Field(default_factory=list)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)  # after providers: fallbacks are checked against them

    @field_validator("routing")
    @classmethod
    def _fallbacks_are_served(cls, value: RoutingConfig, info: ValidationInfo) -> RoutingConfig:
        providers: list[ProviderConfig] | None = info.data.get("providers")
        if providers is None:  # the providers have errors of their own
            return value
        for model, fallbacks in value.fallbacks.items():
            for name in (model, *fallbacks):
                if not _served(name, providers):
                    raise ValueError(f"fallbacks: no provider serves {name!r} (a model name, an alias, or "
                                     "provider/model)")
        return value

    @field_validator("payload")
    @classmethod
    def _known_providers(cls, value: list[PayloadRule], info: ValidationInfo) -> list[PayloadRule]:
        known = {p.name for p in info.data.get("providers", [])}
        for index, rule in enumerate(value):
            for name in rule.match.providers:
                if known and name not in known:
                    raise ValueError(f"rule {index} (match.providers) names {name!r}, which is not a configured provider")
        return value

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
    return parse_config(read_config_text(path), str(path))


def read_config_text(path: str | Path) -> str:
    """The file's text; a ConfigError of one line when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except PermissionError:
        raise ConfigError(f"config file {path} cannot be read: permission denied") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None


def parse_config(text: str, source: str = "<config>", environ: Mapping[str, str] | None = None) -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _expand_env(node, os.environ if environ is None else environ, source, set())
        data = yaml.SafeLoader("").construct_document(node) if node is not None else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (server:, providers:, ...)")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, node, source)) from None


# `${VAR}`, `${VAR:-default}` (the default also when VAR is empty) and `$$` for a literal `$`
_REFERENCE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")


def _expand_env(node: yaml.Node, environ: Mapping[str, str], source: str, seen: set[int]) -> None:
    """Environment references in the string values (not the keys) of the
    composed document, so that an unset one is reported with its line. A node
    reached again through a YAML alias is expanded once."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for _, value in node.value:
            _expand_env(value, environ, source, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _expand_env(item, environ, source, seen)
    elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str" and "$" in node.value:
        node.value = _expand_string(node.value, environ, f"{source}:{node.start_mark.line + 1}")


def _expand_string(text: str, environ: Mapping[str, str], where: str) -> str:
    def value_of(found: re.Match[str]) -> str:
        name, default = found.group(1), found.group(2)
        if name is None:
            return "$"
        value = environ.get(name)
        if value is None or (default is not None and value == ""):
            if default is None:
                raise ConfigError(f"{where}: {name} is not set")
            return default
        return value

    expanded = _REFERENCE.sub(value_of, text)
    if "${" in _REFERENCE.sub("", text):
        raise ConfigError(f"{where}: a `${{` that is not a ${{NAME}} or ${{NAME:-default}} reference "
                          "(write $$ for a literal $)")
    return expanded


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
