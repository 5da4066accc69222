"""The JSON format of one account file, `<id>.json` in the auth dir:

    {"provider": "openrouter", "type": "api_key", "api_key": "sk-...",
     "label": "work key", "disabled": false, "priority": 0, "weight": 1,
     "excluded_models": [], "proxy": null, "headers": {}}

or, for a login, `"type": "oauth"` with `access_token`, `refresh_token` and
`expires_at` (Unix seconds or RFC 3339) in place of `api_key`, and
`needs_login` (a reason, or null) once its refresh token has been refused. Only
`provider` and the credential are required. Fields this module does not know are kept
when the file is rewritten; in an OAuth file they are the token's `extras`.

Errors name the field and what is wrong with it, never its value."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from crossroute.accounts.model import Account, ApiKey, Credential, OAuthToken
from crossroute.upstream_proxy import DIRECT, UnusableProxy, parse_proxy

MAX_FILE_BYTES = 1 << 20
ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
ACCOUNT_ID_RULE = "letters, digits and _ . @ -, at most 128, starting with a letter or digit"
OVERRIDES_STEM = "overrides"  # <auth dir>/overrides.json holds options for the config's accounts
_OPTIONS = ("label", "disabled", "priority", "weight", "excluded_models", "proxy", "headers", "needs_login")
_API_KEY_FIELDS = ("api_key",)
_OAUTH_FIELDS = ("access_token", "refresh_token", "expires_at")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # would break (or forge lines in) the upstream request head
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_KNOWN = frozenset(("provider", "type", *_OPTIONS, *_API_KEY_FIELDS, *_OAUTH_FIELDS))


class BadAccountFile(ValueError):
    """Why a file is not a usable account; names fields, never values."""


def valid_account_id(account_id: str) -> bool:
    return ACCOUNT_ID.fullmatch(account_id) is not None and account_id != OVERRIDES_STEM


def new_account_id(provider: str, label: str = "") -> str:
    """An id for a new file: readable (from the provider and label), unique
    (a random tail), and never derived from the secret."""
    base = re.sub(r"[^A-Za-z0-9_.@-]+", "-", f"{provider}-{label}" if label else provider).strip("-.")
    return f"{base[:110] or 'account'}-{secrets.token_hex(4)}"


def load_json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadAccountFile("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadAccountFile(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise BadAccountFile(f"{_json_type(data)}, not a JSON object")
    return data


def parse_account(account_id: str, raw: bytes, source: str) -> Account:
    data = load_json_object(raw)
    kind = data.get("type", "api_key")
    credential: Credential
    if kind == "api_key":
        credential = ApiKey(_required_text(data, "api_key"))
    elif kind == "oauth":
        credential = _oauth_token(data)
    else:
        raise BadAccountFile('field "type" must be "api_key" or "oauth"')
    return Account(
        id=account_id,
        provider=_required_text(data, "provider"),
        label=_optional(data, "label", str, account_id),
        credential=credential,
        disabled=_optional(data, "disabled", bool, False),
        priority=_integer(data, "priority", 0, minimum=None),
        weight=_integer(data, "weight", 1, minimum=0),
        excluded_models=tuple(_string_list(data, "excluded_models")),
        proxy=_proxy(data),
        headers=_string_map(data, "headers"),
        source=source,
        needs_login=_optional(data, "needs_login", str, None),
    )


def render_account(account: Account, existing: dict[str, Any]) -> bytes:
    """The file for `account`, keeping the fields of `existing` (the file it
    replaces) that the model does not hold, but not the other credential type's."""
    fields: dict[str, Any] = {"provider": account.provider, **_credential_fields(account.credential),
                              "label": account.label, "disabled": account.disabled,
                              "priority": account.priority, "weight": account.weight,
                              "excluded_models": list(account.excluded_models), "proxy": account.proxy,
                              "headers": dict(account.headers), "needs_login": account.needs_login}
    if isinstance(account.credential, OAuthToken):
        fields.update((k, v) for k, v in account.credential.extras.items() if k not in _KNOWN)
    dropped = _OAUTH_FIELDS if isinstance(account.credential, ApiKey) else _API_KEY_FIELDS
    fields.update((k, v) for k, v in existing.items() if k not in fields and k not in dropped)
    if fields["needs_login"] is None:  # a usable account's file does not mention it
        del fields["needs_login"]
    return render_object(fields)


def render_object(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n"


def _credential_fields(credential: Credential) -> dict[str, Any]:
    if isinstance(credential, ApiKey):
        return {"type": "api_key", "api_key": credential.key}
    expires = credential.expires_at
    return {"type": "oauth", "access_token": credential.access_token, "refresh_token": credential.refresh_token,
            "expires_at": int(expires) if expires is not None and expires.is_integer() else expires}


def _oauth_token(data: dict[str, Any]) -> OAuthToken:
    refresh = data.get("refresh_token")
    if refresh is not None and not isinstance(refresh, str):
        raise BadAccountFile('field "refresh_token" must be a string or null')
    return OAuthToken(
        access_token=_required_text(data, "access_token"),
        refresh_token=refresh,
        expires_at=_expires_at(data.get("expires_at")),
        extras={k: v for k, v in data.items() if k not in _KNOWN},
    )


def _expires_at(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise BadAccountFile('field "expires_at" is not an RFC 3339 time') from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise BadAccountFile('field "expires_at" must be Unix seconds, an RFC 3339 time or null')


def _required_text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise BadAccountFile(f'field "{name}" is missing')
    if not isinstance(value, str):
        raise BadAccountFile(f'field "{name}" must be a string, not {_json_type(value)}')
    if not value.strip():
        raise BadAccountFile(f'field "{name}" is empty')
    if _CONTROL.search(value):
        raise BadAccountFile(f'field "{name}" contains control characters')
    return value


def _optional(data: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BadAccountFile(f'field "{name}" must be {_JSON_NAMES[kind]}, not {_json_type(value)}')
    return value


def _integer(data: dict[str, Any], name: str, default: int, minimum: int | None) -> int:
    value = _optional(data, name, int, default)
    if minimum is not None and value < minimum:
        raise BadAccountFile(f'field "{name}" must be at least {minimum}')
    return int(value)


def _string_list(data: dict[str, Any], name: str) -> list[str]:
    value = _optional(data, name, list, [])
    if not all(isinstance(item, str) for item in value):
        raise BadAccountFile(f'field "{name}" must be a list of strings')
    return value


def _string_map(data: dict[str, Any], name: str) -> dict[str, str]:
    value = _optional(data, name, dict, {})
    if not all(isinstance(item, str) for item in value.values()):
        raise BadAccountFile(f'field "{name}" must map names to strings')
    if not all(_HEADER_NAME.fullmatch(key) and not _CONTROL.search(item) for key, item in value.items()):
        raise BadAccountFile(f'field "{name}" holds a header name or value that cannot be sent in HTTP')
    return dict(value)


def _proxy(data: dict[str, Any]) -> str | None:
    value = _optional(data, "proxy", str, None)
    if value is not None and value.strip().lower() not in DIRECT:
        try:
            parse_proxy(value)
        except UnusableProxy as exc:
            raise BadAccountFile(f'field "proxy": {exc}') from None
    return value


_JSON_NAMES: dict[type, str] = {str: "a string", bool: "true or false", int: "an integer", list: "a list",
                                dict: "an object"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "true or false"), (str, "a string"), (int, "an integer"), (float, "a number"),
                       (list, "a list"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__
