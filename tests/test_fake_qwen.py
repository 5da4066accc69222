"""FakeQwen driven like qwen-code would: plain HTTP for the device login, the openai SDK for DashScope chat.

Every rejection the fake has is provoked here, so a provider built against it meets each one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from tests.fakes import Turn
from tests.fakes.login import Identity
from tests.fakes.qwen import CLIENT_ID, DEVICE_GRANT, FakeQwen
from tests.pkce import pkce_pair

HTTP = httpx.Client(timeout=10)
SCOPE = "openid profile email model.completion"
OAUTH_HEADERS = {
    "X-DashScope-AuthType": "qwen-oauth",
    "X-DashScope-CacheControl": "enable",
    "X-DashScope-UserAgent": "crossroute-test/0",
}
USER: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake() -> Iterator[FakeQwen]:
    with FakeQwen() as server:
        yield server


def device_code(fake: FakeQwen, challenge: str, **override: str) -> httpx.Response:
    form = {
        "client_id": CLIENT_ID,
        "scope": SCOPE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    form.update(override)
    return HTTP.post(f"{fake.url}/api/v1/oauth2/device/code", data=form, headers={"x-request-id": "req-1"})


def poll(fake: FakeQwen, device: str, verifier: str) -> httpx.Response:
    form = {
        "grant_type": DEVICE_GRANT,
        "client_id": CLIENT_ID,
        "device_code": device,
        "code_verifier": verifier,
    }
    return HTTP.post(f"{fake.url}/api/v1/oauth2/token", data=form)


def refresh(fake: FakeQwen, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": refresh_token}
    return HTTP.post(f"{fake.url}/api/v1/oauth2/token", data=form)


def login(fake: FakeQwen, identity: Identity | None = None) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    start = device_code(fake, challenge).json()
    fake.approve(start["user_code"], identity=identity)
    answer = poll(fake, start["device_code"], verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def error_of(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]


# ----------------------------------------------------------------- device login


def test_device_login_with_pkce(fake: FakeQwen) -> None:
    verifier, challenge = pkce_pair()
    start = device_code(fake, challenge)
    assert start.status_code == 200
    body = start.json()
    assert set(body) >= {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
    }
    assert body["user_code"] in body["verification_uri_complete"]
    assert HTTP.get(body["verification_uri_complete"]).status_code == 200
    assert error_of(poll(fake, body["device_code"], verifier)) == (400, "authorization_pending")

    fake.approve(body["user_code"])
    tokens = poll(fake, body["device_code"], verifier).json()
    assert set(tokens) >= {"access_token", "refresh_token", "token_type", "expires_in", "resource_url"}
    assert tokens["resource_url"] == fake.url and tokens["token_type"] == "Bearer"
    assert error_of(poll(fake, body["device_code"], verifier)) == (400, "invalid_grant")  # collected once
    counters = fake.counters
    assert (counters.device_requests, counters.polls, counters.token_calls) == (1, 3, 3)
    assert fake.requests_to("/api/v1/oauth2/device/code")[0].body["code_challenge"] == challenge


def test_device_code_request_refusals(fake: FakeQwen) -> None:
    challenge = pkce_pair()[1]
    assert error_of(device_code(fake, challenge, client_id="other")) == (400, "invalid_client")
    assert error_of(device_code(fake, "")) == (400, "invalid_request")
    assert error_of(device_code(fake, challenge, code_challenge_method="plain")) == (400, "invalid_request")
    as_json = HTTP.post(
        f"{fake.url}/api/v1/oauth2/device/code",
        json={"client_id": CLIENT_ID, "code_challenge": challenge, "code_challenge_method": "S256"},
    )
    assert error_of(as_json) == (400, "invalid_client")  # the endpoint reads a form, as qwen-code sends  # fmt: skip


def test_wrong_verifier_is_refused(fake: FakeQwen) -> None:
    verifier, challenge = pkce_pair()
    start = device_code(fake, challenge).json()
    fake.approve()
    assert error_of(poll(fake, start["device_code"], pkce_pair()[0])) == (400, "invalid_grant")
    assert poll(fake, start["device_code"], verifier).status_code == 200


def test_slow_down_when_polling_too_fast() -> None:
    with FakeQwen(min_poll_interval=60, interval=5) as fake:
        verifier, challenge = pkce_pair()
        start = device_code(fake, challenge).json()
        assert start["interval"] == 5
        assert error_of(poll(fake, start["device_code"], verifier)) == (400, "authorization_pending")
        assert error_of(poll(fake, start["device_code"], verifier)) == (429, "slow_down")
        fake.advance(61)
        assert error_of(poll(fake, start["device_code"], verifier)) == (400, "authorization_pending")


def test_slow_down_on_demand(fake: FakeQwen) -> None:
    verifier, challenge = pkce_pair()
    start = device_code(fake, challenge).json()
    fake.slow_down_next(2)
    assert [error_of(poll(fake, start["device_code"], verifier)) for _ in range(3)] == [
        (429, "slow_down"), (429, "slow_down"), (400, "authorization_pending")]  # fmt: skip


def test_denied_and_expired_device_codes(fake: FakeQwen) -> None:
    verifier, challenge = pkce_pair()
    denied = device_code(fake, challenge).json()
    fake.deny(denied["user_code"])
    assert error_of(poll(fake, denied["device_code"], verifier)) == (400, "access_denied")

    expired = device_code(fake, challenge).json()
    fake.advance(601)
    assert error_of(poll(fake, expired["device_code"], verifier)) == (400, "expired_token")
    assert error_of(poll(fake, "no-such-code", verifier)) == (400, "invalid_grant")
    with pytest.raises(LookupError):
        fake.approve()  # nothing pending any more


# ----------------------------------------------------------------- refresh


def test_refresh_rotates_and_an_old_token_is_refused(fake: FakeQwen) -> None:
    first = login(fake)
    second = refresh(fake, first["refresh_token"])
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["resource_url"] == fake.url
    assert error_of(refresh(fake, first["refresh_token"])) == (400, "invalid_grant")
    assert refresh(fake, rotated["refresh_token"]).status_code == 200
    assert error_of(refresh(fake, "qrt_unknown")) == (400, "invalid_grant")
    assert fake.counters.refresh_calls == 4


def test_refresh_may_leave_the_refresh_token_out(fake: FakeQwen) -> None:
    first = login(fake)
    fake.keep_refresh_tokens()
    answer = refresh(fake, first["refresh_token"]).json()
    assert "refresh_token" not in answer and answer["access_token"] != first["access_token"]
    assert refresh(fake, first["refresh_token"]).status_code == 200  # the client's own token stays good


def test_revoked_login_cannot_refresh(fake: FakeQwen) -> None:
    tokens = login(fake)
    fake.revoke_all()
    assert error_of(refresh(fake, tokens["refresh_token"])) == (400, "invalid_grant")


def test_resource_url_as_a_bare_host() -> None:
    with FakeQwen(resource_url="portal.qwen.ai") as fake:
        assert login(fake)["resource_url"] == "portal.qwen.ai"
        assert login(fake, Identity(account_id="u2", resource_url="https://dashscope.example")).get(
            "resource_url") == "https://dashscope.example"  # fmt: skip


# ----------------------------------------------------------------- DashScope chat


def sdk(fake: FakeQwen, access_token: str, headers: dict[str, str] | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key=access_token, max_retries=0, timeout=10,
                         default_headers=OAUTH_HEADERS if headers is None else headers)  # fmt: skip


def test_chat_with_the_oauth_token(fake: FakeQwen) -> None:
    tokens = login(fake)
    client = openai.OpenAI(base_url=f"{tokens['resource_url']}/v1", api_key=tokens["access_token"],
                           default_headers=OAUTH_HEADERS, max_retries=0)  # fmt: skip
    fake.script(Turn(text="hello from qwen"))
    answer = client.chat.completions.create(model="coder-model", messages=USER, max_tokens=65536)
    assert answer.choices[0].message.content == "hello from qwen"
    seen = fake.chat_requests()[0]
    assert seen.headers["x-dashscope-authtype"] == "qwen-oauth"
    assert seen.headers["x-dashscope-useragent"] == "crossroute-test/0"
    assert fake.used_today() == 1


def test_chat_stream_with_usage(fake: FakeQwen) -> None:
    client = sdk(fake, login(fake)["access_token"])
    fake.script(Turn(text="streamed text"))
    chunks = list(client.chat.completions.create(model="coder-model", messages=USER, stream=True,
                                                 stream_options={"include_usage": True}))  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed text"
    assert chunks[-1].usage is not None


def test_chat_compatible_mode_path_with_an_api_key() -> None:
    with FakeQwen(api_keys=["sk-dashscope-test"]) as fake:
        client = openai.OpenAI(base_url=f"{fake.url}/compatible-mode/v1", api_key="sk-dashscope-test",
                               default_headers={"X-DashScope-CacheControl": "enable"}, max_retries=0)  # fmt: skip
        assert (
            client.chat.completions.create(model="qwen3-coder-plus", messages=USER).choices[0].message.content
        )
        with pytest.raises(openai.AuthenticationError):
            sdk(fake, "sk-wrong", headers={}).chat.completions.create(model="coder-model", messages=USER)


@pytest.mark.parametrize(
    ("model", "max_tokens", "cap"), [("coder-model", 65537, 65536), ("vision-model", 8193, 8192)]
)
def test_output_cap_per_model(fake: FakeQwen, model: str, max_tokens: int, cap: int) -> None:
    client = sdk(fake, login(fake)["access_token"])
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=model, messages=USER, max_tokens=max_tokens)
    error = refused.value.body
    assert isinstance(error, dict)
    assert f"Range of max_tokens should be [1, {cap}]" in error["message"]
    assert error["code"] == "invalid_parameter_error"
    assert client.chat.completions.create(model=model, messages=USER, max_tokens=cap).choices


def test_chat_refusals(fake: FakeQwen) -> None:
    tokens = login(fake)
    with pytest.raises(openai.AuthenticationError) as plain_key:
        sdk(fake, tokens["access_token"], headers={}).chat.completions.create(
            model="coder-model", messages=USER
        )
    assert "Incorrect API key" in str(plain_key.value)
    with pytest.raises(openai.NotFoundError):
        sdk(fake, tokens["access_token"]).chat.completions.create(model="qwen-unknown", messages=USER)
    fake.expire_access_tokens()
    with pytest.raises(openai.AuthenticationError) as expired:
        sdk(fake, tokens["access_token"]).chat.completions.create(model="coder-model", messages=USER)
    assert "invalid access token or token expired" in str(expired.value)
    fresh = refresh(fake, tokens["refresh_token"]).json()
    assert (
        sdk(fake, fresh["access_token"]).chat.completions.create(model="coder-model", messages=USER).choices
    )


def test_access_tokens_expire_with_the_clock() -> None:
    with FakeQwen(access_ttl=60) as fake:
        client = sdk(fake, login(fake)["access_token"])
        assert client.chat.completions.create(model="coder-model", messages=USER).choices
        fake.advance(61)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="coder-model", messages=USER)


def test_daily_quota_per_account_until_midnight_in_beijing() -> None:
    with FakeQwen(daily_limit=2, access_ttl=2 * 86400) as fake:
        client = sdk(fake, login(fake)["access_token"])
        for _ in range(2):
            assert client.chat.completions.create(model="coder-model", messages=USER).choices
        with pytest.raises(openai.RateLimitError) as spent:
            client.chat.completions.create(model="coder-model", messages=USER)
        error = spent.value.body
        assert isinstance(error, dict)
        assert (error["code"], error["type"]) == ("insufficient_quota", "insufficient_quota")
        assert error["message"] == "Free allocated quota exceeded."

        other = sdk(fake, login(fake, Identity(account_id="qwen-user-0002"))["access_token"])
        assert other.chat.completions.create(model="coder-model", messages=USER).choices
        fake.advance(fake.next_quota_reset() - fake.now() + 1)
        assert client.chat.completions.create(model="coder-model", messages=USER).choices


def test_quota_refusal_as_403() -> None:
    with FakeQwen(daily_limit=0, quota_status=403) as fake:
        with pytest.raises(openai.PermissionDeniedError):
            sdk(fake, login(fake)["access_token"]).chat.completions.create(model="coder-model", messages=USER)


def test_free_tier_ended(fake: FakeQwen) -> None:
    client = sdk(fake, login(fake)["access_token"])
    fake.end_free_tier()
    with pytest.raises(openai.RateLimitError) as ended:
        client.chat.completions.create(model="coder-model", messages=USER)
    assert isinstance(ended.value.body, dict) and ended.value.body["code"] == "insufficient_quota"


def test_model_list_and_unknown_paths(fake: FakeQwen) -> None:
    client = sdk(fake, login(fake)["access_token"])
    assert [m.id for m in client.models.list()] == list(fake.output_caps)
    assert HTTP.post(f"{fake.url}/v2/other").status_code == 404


def test_oauth_creds_hold_working_tokens_of_the_fake(fake: FakeQwen) -> None:
    creds = fake.oauth_creds()
    assert creds["resource_url"] == fake.url and creds["expiry_date"] > fake.now() * 1000
    assert (
        sdk(fake, creds["access_token"]).chat.completions.create(model="coder-model", messages=USER).choices
    )
    assert refresh(fake, creds["refresh_token"]).status_code == 200
