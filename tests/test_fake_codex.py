"""FakeCodex driven like a Codex client would: plain HTTP for the logins, the openai SDK for the backend.

Every rejection the fake has is provoked here, so a provider built against it meets each one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
import jwt
import openai
import orjson
import pytest

from tests.fakes import Turn
from tests.fakes.codex import AUTH_CLAIM, CLIENT_ID, FakeCodex
from tests.fakes.login import Identity, pkce_matches
from tests.pkce import challenge_of, pkce_pair
from tests.test_fakes import sse_events

REDIRECT = "http://localhost:1455/auth/callback"
SCOPE = "openid profile email offline_access"
HTTP = httpx.Client(timeout=10)
ACCOUNT = "acct-fake-0001"


@pytest.fixture
def fake() -> Iterator[FakeCodex]:
    with FakeCodex(device_interval=0) as server:
        yield server


def authorize(fake: FakeCodex, challenge: str, **override: str) -> httpx.Response:
    params = {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPE,
        "code_challenge": challenge, "code_challenge_method": "S256", "state": "st-123",
        "id_token_add_organizations": "true", "codex_cli_simplified_flow": "true", "originator": "crossroute",
    }  # fmt: skip
    params.update(override)
    return HTTP.get(f"{fake.url}/oauth/authorize?{urlencode(params)}", follow_redirects=False)


def redirect_query(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def token(fake: FakeCodex, **form: str) -> httpx.Response:
    return HTTP.post(f"{fake.url}/oauth/token", data={"client_id": CLIENT_ID, **form})


def browser_login(fake: FakeCodex) -> dict[str, Any]:
    verifier, challenge = pkce_pair(96)
    code = redirect_query(authorize(fake, challenge))["code"]
    answer = token(
        fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def verified_claims(fake: FakeCodex, token_text: str, audience: str) -> dict[str, Any]:
    keys = jwt.PyJWKSet.from_dict(HTTP.get(f"{fake.url}/.well-known/jwks.json").json())
    kid = jwt.get_unverified_header(token_text)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(token_text, key.key, algorithms=["RS256"], audience=audience)


def backend_headers(tokens: dict[str, Any], account: str = ACCOUNT) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {tokens['access_token']}", "ChatGPT-Account-Id": account,
        "originator": "crossroute", "session_id": "sess-1", "Accept": "text/event-stream",
    }  # fmt: skip


def codex_body(**override: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-5.4", "instructions": "", "store": False, "stream": True,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "sess-1",
    }  # fmt: skip
    body.update(override)
    return body


def post_responses(fake: FakeCodex, tokens: dict[str, Any], body: Any, **headers: str) -> httpx.Response:
    return HTTP.post(f"{fake.base_url}/responses", json=body, headers={**backend_headers(tokens), **headers})


# ----------------------------------------------------------------- PKCE and the browser login


def test_pkce_check_follows_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not pkce_matches(verifier[:-1], challenge_of(verifier[:-1]))  # 42 characters: too short


def test_browser_login_issues_tokens_carrying_the_account_claim(fake: FakeCodex) -> None:
    tokens = browser_login(fake)

    assert set(tokens) >= {"id_token", "access_token", "refresh_token", "expires_in"}
    id_claims = verified_claims(fake, tokens["id_token"], CLIENT_ID)
    assert id_claims["email"] == "user@example.com"
    assert id_claims[AUTH_CLAIM]["chatgpt_account_id"] == ACCOUNT
    assert id_claims[AUTH_CLAIM]["chatgpt_plan_type"] == "plus"
    access_claims = verified_claims(fake, tokens["access_token"], "https://api.openai.com/v1")
    assert access_claims[AUTH_CLAIM]["chatgpt_account_id"] == ACCOUNT
    assert (fake.counters.token_calls, fake.counters.code_exchanges) == (1, 1)
    authorize_request = fake.requests_to("/oauth/authorize")[0]
    assert authorize_request.query["code_challenge_method"] == "S256"


def test_redirect_carries_code_and_state(fake: FakeCodex) -> None:
    query = redirect_query(authorize(fake, pkce_pair()[1]))
    assert query["state"] == "st-123" and query["code"]


def test_authorize_never_redirects_to_an_unregistered_uri(fake: FakeCodex) -> None:
    answer = authorize(fake, pkce_pair()[1], redirect_uri="http://localhost:9999/auth/callback")
    assert answer.status_code == 400 and "location" not in answer.headers
    assert authorize(fake, pkce_pair()[1], client_id="app_other").status_code == 400


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_authorize_refusals_go_back_to_the_client(
    fake: FakeCodex, override: dict[str, str], error: str
) -> None:
    query = redirect_query(authorize(fake, pkce_pair()[1], **override))
    assert query["error"] == error and query["state"] == "st-123" and "code" not in query


def test_denied_browser_login(fake: FakeCodex) -> None:
    fake.deny()
    query = redirect_query(authorize(fake, pkce_pair()[1]))
    assert query["error"] == "access_denied" and query["state"] == "st-123"


def test_approve_can_sign_in_someone_else(fake: FakeCodex) -> None:
    fake.approve(identity=Identity(account_id="acct-team-9", email="b@example.com", plan="pro"))
    claims = jwt.decode(browser_login(fake)["id_token"], options={"verify_signature": False})
    assert claims[AUTH_CLAIM]["chatgpt_account_id"] == "acct-team-9"
    assert claims[AUTH_CLAIM]["chatgpt_plan_type"] == "pro"


def test_code_exchange_refusals(fake: FakeCodex) -> None:
    verifier, challenge = pkce_pair(96)
    code = redirect_query(authorize(fake, challenge))["code"]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}

    for bad_verifier in (pkce_pair(96)[0], verifier[:42], ""):
        answer = token(fake, **exchange, code_verifier=bad_verifier)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    wrong_redirect = token(fake, **{**exchange, "redirect_uri": "http://localhost:1457/auth/callback"},
                           code_verifier=verifier)  # fmt: skip
    assert wrong_redirect.json()["error"] == "invalid_grant"
    assert token(fake, **exchange, code_verifier=verifier).status_code == 200
    assert token(fake, **exchange, code_verifier=verifier).json()["error"] == "invalid_grant"  # single use
    assert token(fake, **exchange, code_verifier=verifier, client_id="app_other").status_code == 401
    assert token(fake, grant_type="password").json()["error"] == "unsupported_grant_type"


def test_codes_expire(fake: FakeCodex) -> None:
    verifier, challenge = pkce_pair(96)
    code = redirect_query(authorize(fake, challenge))["code"]
    fake.advance(601)
    answer = token(
        fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier
    )
    assert answer.json()["error"] == "invalid_grant"


# ----------------------------------------------------------------- refresh


def refresh(fake: FakeCodex, refresh_token: str, *, as_json: bool = False) -> httpx.Response:
    form = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh_token,
            "scope": "openid profile email"}  # fmt: skip
    if as_json:
        return HTTP.post(f"{fake.url}/oauth/token", json=form)
    return HTTP.post(f"{fake.url}/oauth/token", data=form)


def test_refresh_rotates_and_a_reused_token_ends_the_login(fake: FakeCodex) -> None:
    first = browser_login(fake)
    second = refresh(fake, first["refresh_token"], as_json=True)  # codex-rs sends JSON, others a form
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]

    reused = refresh(fake, first["refresh_token"])
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "refresh_token_reused"
    assert "already been used" in reused.json()["error"]["message"]
    after = refresh(fake, rotated["refresh_token"])  # the replay revoked the whole chain
    assert (after.status_code, after.json()["error"]["code"]) == (401, "refresh_token_invalidated")
    stale = post_responses(fake, rotated, codex_body())
    assert (stale.status_code, stale.json()["error"]["code"]) == (401, "token_invalidated")
    assert fake.counters.refresh_calls == 3


def test_reuse_without_chain_revocation_leaves_the_newest_token_working() -> None:
    with FakeCodex(revoke_on_reuse=False) as fake:
        first = browser_login(fake)
        rotated = refresh(fake, first["refresh_token"]).json()
        assert refresh(fake, first["refresh_token"]).json()["error"]["code"] == "refresh_token_reused"
        assert refresh(fake, rotated["refresh_token"]).status_code == 200


def test_expired_and_unknown_refresh_tokens(fake: FakeCodex) -> None:
    tokens = browser_login(fake)
    assert refresh(fake, "rt_not-ours").json()["error"] == "invalid_grant"
    fake.expire_refresh_tokens()
    answer = refresh(fake, tokens["refresh_token"])
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "refresh_token_expired")


# ----------------------------------------------------------------- device login


def device_start(fake: FakeCodex) -> dict[str, Any]:
    answer = HTTP.post(f"{fake.url}/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID})
    assert answer.status_code == 200
    return answer.json()


def device_poll(fake: FakeCodex, start: dict[str, Any]) -> httpx.Response:
    body = {"device_auth_id": start["device_auth_id"], "user_code": start["user_code"]}
    return HTTP.post(f"{fake.url}/api/accounts/deviceauth/token", json=body)


def test_device_login_then_code_exchange(fake: FakeCodex) -> None:
    start = device_start(fake)
    assert isinstance(start["interval"], str) and start["interval"] == "0"
    pending = device_poll(fake, start)
    assert pending.status_code == 403
    assert pending.json()["error"]["code"] == "deviceauth_authorization_unknown"
    assert HTTP.get(f"{fake.url}/codex/device").status_code == 200

    fake.approve(start["user_code"])
    granted = device_poll(fake, start)
    assert granted.status_code == 200
    answer = granted.json()
    assert challenge_of(answer["code_verifier"]) == answer["code_challenge"]
    tokens = token(
        fake,
        grant_type="authorization_code",
        code=answer["authorization_code"],
        redirect_uri=f"{fake.url}/deviceauth/callback",
        code_verifier=answer["code_verifier"],
    ).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims[AUTH_CLAIM]["chatgpt_account_id"] == ACCOUNT
    assert device_poll(fake, start).status_code == 404  # collected once
    assert (fake.counters.device_requests, fake.counters.polls) == (1, 3)


def test_device_login_denied_expired_and_disabled(fake: FakeCodex) -> None:
    denied = device_start(fake)
    fake.deny()
    assert device_poll(fake, denied).json()["error"]["code"] == "access_denied"

    expired = device_start(fake)
    fake.advance(901)
    answer = device_poll(fake, expired)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "deviceauth_expired")
    assert device_poll(fake, {**expired, "user_code": "WRONG-CODE"}).status_code == 404
    with pytest.raises(LookupError):
        fake.approve("NOPE-NOPE")

    fake.device_login_enabled = False
    assert (
        HTTP.post(f"{fake.url}/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID}).status_code
        == 404
    )


# ----------------------------------------------------------------- the backend


def test_backend_streams_responses_with_usage_windows(fake: FakeCodex) -> None:
    tokens = browser_login(fake)
    fake.script(Turn(text="hello there"))
    answer = post_responses(fake, tokens, codex_body())

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["x-codex-primary-window-minutes"] == "300"
    assert answer.headers["x-codex-secondary-window-minutes"] == "10080"
    assert answer.headers["x-codex-primary-used-percent"] == "1"
    assert int(answer.headers["x-codex-primary-reset-at"]) > int(fake.now())
    events = [(name, orjson.loads(data)) for name, data in sse_events(answer.text)]
    done = [data["item"] for name, data in events if name == "response.output_item.done"]
    assert done[0]["content"][0]["text"] == "hello there"
    assert events[-1][0] == "response.completed"
    assert events[-1][1]["response"]["output"] == []  # the client rebuilds it from output_item.done
    assert "[DONE]" not in answer.text
    seen = fake.backend_requests()[0]
    assert seen.headers["chatgpt-account-id"] == ACCOUNT and seen.headers["originator"] == "crossroute"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (codex_body(instructions=None), "Instructions are required"),
        ({k: v for k, v in codex_body().items() if k != "instructions"}, "Instructions are required"),
        (codex_body(store=True), "Store must be set to false"),
        ({k: v for k, v in codex_body().items() if k != "store"}, "Store must be set to false"),
        (codex_body(stream=False), "Stream must be set to true"),
        (codex_body(max_output_tokens=512), "Unsupported parameter: max_output_tokens"),
        (codex_body(temperature=0.2), "Unsupported parameter: temperature"),
        (codex_body(metadata={"a": "b"}), "Unsupported parameter: metadata"),
        (codex_body(service_tier="auto"), "Unsupported service_tier: auto"),
        (codex_body(model="openai/gpt-5.4"),
         "The 'openai/gpt-5.4' model is not supported when using Codex with a ChatGPT account."),
        (codex_body(input=[{"type": "message", "role": "system", "content": "be brief"}]),
         "System messages are not allowed"),
        (codex_body(input=[{"type": "function_call", "call_id": "call_1", "name": "ls", "arguments": "{}"}]),
         "No tool output found for function call call_1."),
    ],
)  # fmt: skip
def test_backend_refuses_what_chatgpt_refuses(fake: FakeCodex, body: dict[str, Any], message: str) -> None:
    tokens = browser_login(fake)
    answer = post_responses(fake, tokens, body)
    assert (answer.status_code, answer.json()) == (400, {"detail": message})


def test_backend_accepts_priority_tier_and_answered_calls(fake: FakeCodex) -> None:
    tokens = browser_login(fake)
    items = [
        {"type": "message", "role": "developer", "content": "be brief"},
        {"type": "function_call", "call_id": "call_1", "name": "ls", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
    ]
    assert post_responses(fake, tokens, codex_body(service_tier="priority", input=items)).status_code == 200


def test_backend_authentication(fake: FakeCodex) -> None:
    tokens = browser_login(fake)
    body = codex_body()
    no_bearer = HTTP.post(f"{fake.base_url}/responses", json=body, headers={"ChatGPT-Account-Id": ACCOUNT})
    assert no_bearer.status_code == 401
    garbage = post_responses(fake, {"access_token": "not-a-jwt"}, body)
    assert (garbage.status_code, garbage.json()["error"]["code"]) == (401, "invalid_jwt")
    assert post_responses(fake, tokens, body, **{"ChatGPT-Account-Id": "acct-other"}).status_code == 403
    missing = HTTP.post(f"{fake.base_url}/responses", json=body,
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})  # fmt: skip
    assert missing.status_code == 400

    fake.expire_access_tokens()
    expired = post_responses(fake, tokens, body)
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "token_expired")
    fresh = refresh(fake, tokens["refresh_token"]).json()
    assert post_responses(fake, fresh, body).status_code == 200


def test_access_tokens_expire_with_the_clock() -> None:
    with FakeCodex(access_ttl=60) as fake:
        tokens = browser_login(fake)
        assert post_responses(fake, tokens, codex_body()).status_code == 200
        fake.advance(61)
        assert post_responses(fake, tokens, codex_body()).json()["error"]["code"] == "token_expired"


def test_usage_limit_reached_until_the_window_resets(fake: FakeCodex) -> None:
    tokens = browser_login(fake)
    fake.use_up("primary")
    answer = post_responses(fake, tokens, codex_body())

    assert answer.status_code == 429
    error = answer.json()["error"]
    assert error["type"] == "usage_limit_reached" and error["plan_type"] == "plus"
    assert error["resets_at"] == int(answer.headers["x-codex-primary-reset-at"])
    assert 0 < error["resets_in_seconds"] <= 300 * 60
    assert answer.headers["x-codex-primary-used-percent"] == "100"
    fake.advance(300 * 60 + 1)
    assert post_responses(fake, tokens, codex_body()).status_code == 200


def test_weekly_window_is_reported_too(fake: FakeCodex) -> None:
    tokens = browser_login(fake)
    fake.use_up("secondary")
    answer = post_responses(fake, tokens, codex_body())
    assert answer.status_code == 429
    assert answer.json()["error"]["resets_at"] == int(answer.headers["x-codex-secondary-reset-at"])


def test_model_list_and_usage_endpoint(fake: FakeCodex) -> None:
    tokens = browser_login(fake)
    headers = backend_headers(tokens)
    models = HTTP.get(f"{fake.base_url}/models", params={"client_version": "0.1.0"}, headers=headers)
    assert [m["slug"] for m in models.json()["models"]] == list(fake.models)
    post_responses(fake, tokens, codex_body())
    usage = HTTP.get(f"{fake.url}/backend-api/wham/usage", headers=headers).json()
    assert usage["plan_type"] == "plus"
    assert usage["rate_limit"]["primary_window"]["limit_window_seconds"] == 18000
    assert usage["rate_limit"]["primary_window"]["used_percent"] == 1
    assert HTTP.get(f"{fake.base_url}/models").status_code == 401
    assert HTTP.post(f"{fake.url}/backend-api/codex/unknown").status_code == 404


# ----------------------------------------------------------------- the official SDK against the backend


def sdk(fake: FakeCodex, tokens: dict[str, Any]) -> openai.OpenAI:
    headers = {"ChatGPT-Account-Id": ACCOUNT, "originator": "crossroute"}
    return openai.OpenAI(base_url=fake.base_url, api_key=tokens["access_token"], default_headers=headers,
                         max_retries=0, timeout=10)  # fmt: skip


def test_openai_sdk_streams_from_the_backend(fake: FakeCodex) -> None:
    client = sdk(fake, browser_login(fake))
    fake.script(Turn(text="hello from codex"))
    stream = client.responses.create(
        model="gpt-5.4", instructions="", store=False, stream=True, input="hi",
        include=["reasoning.encrypted_content"],
    )  # fmt: skip
    events = list(stream)

    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "hello from codex"
    assert events[-1].type == "response.completed" and events[-1].response.output == []


def test_openai_sdk_sees_the_refusals(fake: FakeCodex) -> None:
    tokens = browser_login(fake)
    client = sdk(fake, tokens)
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="gpt-5.4", instructions="", store=False, stream=True, input="hi",
                                max_output_tokens=64)  # fmt: skip
    assert bad.value.status_code == 400
    fake.use_up("primary")
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="gpt-5.4", instructions="", store=False, stream=True, input="hi")
    fake.expire_access_tokens()
    with pytest.raises(openai.AuthenticationError):
        client.responses.create(model="gpt-5.4", instructions="", store=False, stream=True, input="hi")


# ----------------------------------------------------------------- helpers for the provider's tests


def test_auth_json_holds_working_tokens_of_the_fake(fake: FakeCodex) -> None:
    auth = fake.auth_json(Identity(account_id="acct-imported", email="i@example.com"))
    assert auth["auth_mode"] == "chatgpt" and auth["OPENAI_API_KEY"] is None
    assert auth["tokens"]["account_id"] == "acct-imported" and auth["last_refresh"].endswith("Z")
    answer = post_responses(fake, auth["tokens"], codex_body(), **{"ChatGPT-Account-Id": "acct-imported"})
    assert answer.status_code == 200
    assert refresh(fake, auth["tokens"]["refresh_token"]).status_code == 200


def test_allowed_loopback_redirect(fake: FakeCodex) -> None:
    fake.allow_redirect("http://localhost:54321/auth/callback")
    answer = authorize(fake, pkce_pair()[1], redirect_uri="http://localhost:54321/auth/callback")
    assert answer.status_code == 302 and "code=" in answer.headers["location"]


def test_refresh_delay_rotates_before_answering(fake: FakeCodex) -> None:
    tokens = fake.issue_tokens()
    fake.refresh_delay = 5
    with pytest.raises(httpx.ReadTimeout):  # the client gives up (or dies) mid-refresh
        HTTP.post(
            f"{fake.url}/oauth/token",
            timeout=0.5,
            json={
                "client_id": CLIENT_ID,
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
            },
        )
    fake.refresh_delay = 0
    assert refresh(fake, tokens["refresh_token"]).json()["error"]["code"] == "refresh_token_reused"
