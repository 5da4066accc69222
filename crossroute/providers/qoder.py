"""Qoder: a login (crossroute/oauth/qoder.py) in front of Qoder's agent chat gateway.

The gateway takes an OpenAI Chat request inside an envelope of its own (`wrap_body`: the
session fields, `session_type: qodercli` without which the server answers with its default
model whatever the request names, the last user text, the tools as they are) and answers
only as a stream whose every SSE event wraps an OpenAI chunk as a JSON string
(`{"body": "<chunk>", "statusCodeValue": 200}`; `unwrap_event`). A client's non-stream
request is streamed and assembled (`streams_only`).

`prepare`, over the final body: the account's token made fresh, the model's config as the
account's live model list publishes it (`model_config`, fetched and cached per account;
a model the list does not offer is a 404, never another model), then the COSY signature
over the exact bytes sent. Message contents go as plain strings (Qoder refuses lists of
parts) and system messages as the top-level `system` field (it refuses the role). The
model list the router serves is the live one of crossroute/oauth/models.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from crossroute import ir
from crossroute.accounts.model import OAuthToken
from crossroute.config import ProviderConfig
from crossroute.oauth.http import control_client
from crossroute.oauth.qoder import CosyUser, QoderLogin, cosy_headers
from crossroute.providers.base import UpstreamRequest
from crossroute.providers.login import LoginProvider
from crossroute.providers.openai_compat import OpenAICompatProvider
from crossroute.upstream_proxy import UnusableProxy

if TYPE_CHECKING:
    from crossroute.accounts import Account

CHAT_PATH = "/algo/api/v2/service/pro/sse/agent_chat_generation?FetchKeys=llm_model_result&AgentId=agent_common"
MODELS_PATH = "/algo/api/v2/model/list"
SESSION_TYPE = "qodercli"  # the CLI's sessions; "qoder" is the IDE's
CATALOG_RETRY = 60.0  # seconds before a model missing from an account's list is looked up again
MAX_CATALOG_BYTES = 1024 * 1024
SESSIONS = uuid.UUID("5f1c6a2e-3b7d-4c55-9a8e-0d2f4b6c8e10")  # names stable per-account session ids
# Business codes in Qoder's errors: the quota is used up; the login expired.
QUOTA_CODES = frozenset({"112"})
LOGIN_CODES = frozenset({"105"})


class QoderProvider(LoginProvider, OpenAICompatProvider):
    kind = "qoder"
    login = QoderLogin()
    has_envelope = True
    streams_only = True
    forwarded_headers = ()  # no OpenAI organization headers to Qoder

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._catalogs: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}  # account id -> (when, models)

    def url(self, model: str, stream: bool) -> str:
        return f"{self.base_url}{CHAT_PATH}"

    # ------------------------------------------------------------ the body

    def wrap_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        """The Qoder envelope around a Chat body; `model_config` and the session are completed in `prepare`."""
        messages, system = qoder_messages(body.get("messages") or [])
        last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        parameters: dict[str, Any] = {}
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(limit, int) and not isinstance(limit, bool):
            parameters["max_tokens"] = limit
        if "reasoning_effort" in body:  # where the effort goes is UNCERTAIN (the list publishes `efforts`)
            parameters["reasoning_effort"] = body["reasoning_effort"]
        return {
            "request_id": str(uuid.uuid4()), "chat_record_id": str(uuid.uuid4()),
            "request_set_id": str(uuid.uuid4()), "session_id": "", "stream": True, "aliyun_user_type": "",
            "agent_id": "agent_common", "chat_task": "FREE_INPUT", "is_reply": True, "is_retry": False,
            "code_language": "", "source": 1, "version": "3", "chat_prompt": "", "task_id": "common",
            "session_type": SESSION_TYPE, "system": system, "parameters": parameters,
            "model_config": {"key": model},
            "chat_context": {"chatPrompt": "", "text": last_user, "features": [], "imageUrls": None,
                             "extra": {"context": [], "modelConfig": {"key": model}, "originalContent": last_user}},
            "messages": messages, "tools": body.get("tools") or [],
            "business": {"id": str(uuid.uuid4()), "begin_at": int(time.time() * 1000), "name": "", "stage": "start"},
        }

    def unwrap_event(self, obj: Any) -> Any:
        """The OpenAI chunk inside one event: `[DONE]` as the raw data it is, an error status as an error."""
        if not isinstance(obj, dict) or "body" not in obj:
            return obj
        status = obj.get("statusCodeValue")
        inner = obj["body"]
        if isinstance(inner, str):
            if inner.strip() == "[DONE]":
                return "[DONE]"
            try:
                inner = orjson.loads(inner)
            except orjson.JSONDecodeError:
                inner = {"error": {"message": inner[:500]}}
        if isinstance(status, int) and status >= 400:
            return {"error": _error_object(status, inner)}
        return inner

    # ------------------------------------------------------------ the final request

    async def prepare(self, request: UpstreamRequest, account: Account) -> UpstreamRequest:
        token = await self.fresh_token(account)
        body = orjson.loads(request.body)
        model = body["model_config"]["key"]
        published = await self._model_config(account, token, model)
        complete_body(body, published, account.id)
        raw = orjson.dumps(body)
        headers = {name: value for name, value in request.headers.items() if name != "authorization"}
        headers.update(cosy_headers(CosyUser.of(token), request.url, raw))
        headers["accept"] = "text/event-stream"
        return UpstreamRequest(request.method, request.url, headers, raw)

    async def _model_config(self, account: Account, token: OAuthToken, model: str) -> dict[str, Any]:
        """The model's entry in the account's live list (fetched when stale, or when the model is missing
        from a list older than CATALOG_RETRY); a 404 in the client's format when the account is not offered it."""
        now = time.time()
        fetched_at, catalog = self._catalogs.get(account.id, (0.0, {}))
        stale = now - fetched_at > self.config.models_refresh
        if stale or (model not in catalog and now - fetched_at > CATALOG_RETRY):
            try:
                catalog = await asyncio.to_thread(self._fetch_catalog, token, self.proxy_for(account))
                self._catalogs[account.id] = (now, catalog)
            except ModelListUnavailable as exc:
                if model not in catalog:
                    raise ir.GatewayError(503, f"provider {self.name}: the model list could not be fetched ({exc})",
                                          kind="unavailable") from None
        entry = catalog.get(model)
        if entry is None:
            raise ir.GatewayError(404, f"The model `{model}` is not offered to this Qoder account (see its live "
                                       "model list: GET /v1/models).", code="model_not_found", param="model")
        return entry

    def _fetch_catalog(self, token: OAuthToken, proxy: str | None) -> dict[str, dict[str, Any]]:
        request = self.models_request(token)
        assert request is not None
        url, headers = request
        try:
            with control_client(url, proxy) as http:
                answer = http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise ModelListUnavailable(f"Qoder could not be reached ({type(exc).__name__})") from None
        except UnusableProxy as exc:
            raise ModelListUnavailable(str(exc)) from None
        if answer.status_code != 200 or len(answer.content) > MAX_CATALOG_BYTES:
            raise ModelListUnavailable(f"HTTP {answer.status_code}")
        try:
            return catalog_of(orjson.loads(answer.content))
        except orjson.JSONDecodeError:
            raise ModelListUnavailable("the answer is not JSON") from None

    # ------------------------------------------------------------ the live model list

    def models_request(self, token: OAuthToken) -> tuple[str, dict[str, str]] | None:
        """`GET {gateway}/algo/api/v2/model/list`, COSY-signed over its empty body."""
        url = f"{self.api_base(token)}{MODELS_PATH}"
        return url, {**self.config.headers, **cosy_headers(CosyUser.of(token), url, b""), "accept": "application/json"}

    def models_from_answer(self, data: Any) -> list[str]:
        return list(catalog_of(data))

    def upstream_error(self, error: ir.GatewayError, raw: bytes) -> None:
        if error.code in QUOTA_CODES:
            error.status, error.kind = 429, "billing"
        elif error.code in LOGIN_CODES:
            error.status, error.kind = 401, "authentication"


class ModelListUnavailable(Exception):
    """The account's model list could not be fetched now; the message holds no secret."""


def catalog_of(data: Any) -> dict[str, dict[str, Any]]:
    """The enabled chat models of a model-list answer (`{"chat": [{key, ...}], "inline": [...]}`), by key."""
    data = data.get("data", data) if isinstance(data, dict) else data
    entries = data.get("chat") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return {}
    return {entry["key"]: entry for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry["key"]
            and entry.get("enable", True) is not False}


def complete_body(body: dict[str, Any], published: dict[str, Any], account_id: str) -> None:
    """The model's published config, its output cap and a session id stable for the account and model."""
    key = published["key"]
    body["model_config"] = {"key": key, "display_name": published.get("display_name", key), "model": "",
                            "format": "openai", "is_vl": bool(published.get("is_vl")),
                            "is_reasoning": bool(published.get("is_reasoning")), "api_key": "", "url": "",
                            "source": "system", "max_input_tokens": published.get("max_input_tokens"),
                            **{name: value for name, value in published.items()
                               if name not in ("enable", "is_default")}}
    body["chat_context"]["extra"]["modelConfig"] = {"key": key, "is_reasoning": bool(published.get("is_reasoning"))}
    cap = published.get("max_output_tokens")
    parameters = body["parameters"]
    if isinstance(cap, int) and (not isinstance(parameters.get("max_tokens"), int) or parameters["max_tokens"] > cap):
        parameters["max_tokens"] = cap
    if not published.get("is_reasoning"):
        parameters.pop("reasoning_effort", None)
    body["session_id"] = str(uuid.uuid5(SESSIONS, f"{account_id}/{key}"))


def qoder_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], str]:
    """The messages as Qoder takes them (each content a string) and the system text they held."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        text = flat_text(message.get("content"), index)
        if message.get("role") in ("system", "developer"):
            if text:
                system.append(text)
            continue
        out.append({**message, "content": text})
    return out, "\n\n".join(system)


def flat_text(content: Any, index: int) -> str:
    """A content as one string: a list of text parts joined; any other part is refused (Qoder takes text only)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content if isinstance(content, list) else [content]:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise ir.GatewayError(400, f"messages[{index}]: Qoder takes text only, not {kind} parts",
                                  param=f"messages[{index}].content")
    return "\n".join(texts)


def _error_object(status: int, inner: Any) -> dict[str, Any]:
    """An OpenAI error object for an enveloped error (its business code kept as the code)."""
    found = inner.get("error") if isinstance(inner, dict) and isinstance(inner.get("error"), dict) else inner
    found = found if isinstance(found, dict) else {}
    message = found.get("message") or found.get("errorMsg") or f"Qoder answered with status {status}"
    code = found.get("code") or found.get("errorCode")
    return {"message": str(message)[:500], "type": "upstream_error", "code": str(code) if code else None,
            "status": status}
