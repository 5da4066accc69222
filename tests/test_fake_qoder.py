"""The COSY signature, checked against values computed here independently (the envelope opened with
the test's own private key, the MD5 recomputed over the documented input), and FakeQoder's own
checks: a wrong or missing signature part is 403 `Signature invalid`, an expired token 401, the
sign-in polling pending until the user signs in, and Qoder's body rules."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from crossroute.accounts.model import OAuthToken
from crossroute.oauth import qoder as qoder_login
from crossroute.oauth.http import control_client
from crossroute.oauth.pkce import Pkce
from crossroute.oauth.qoder import CosyUser, cosy_headers, signature_path
from crossroute.providers.qoder import qoder_messages
from tests.fakes.qoder import FakeQoder
from tests.login_qoder import qoder_fixture  # noqa: F401 - the `qoder` fixture

CHAT = "/algo/api/v2/service/pro/sse/agent_chat_generation?FetchKeys=llm_model_result&AgentId=agent_common"
USER = CosyUser("user-42", "dt-secret-token-value", "Ada", "ada@example.com", "machine-1")


@pytest.fixture
def private_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "public.pem"
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    monkeypatch.setenv(qoder_login.PUBLIC_KEY_ENV, str(path))
    qoder_login.public_key.cache_clear()
    yield key
    qoder_login.public_key.cache_clear()


def test_the_signature_opens_with_the_private_key_and_its_md5_covers_the_documented_input(
        private_key: rsa.RSAPrivateKey) -> None:
    body = b'{"stream":true,"messages":[{"role":"user","content":"hi"}]}'
    headers = cosy_headers(USER, f"https://api3.qoder.sh{CHAT}", body, now=1_700_000_000)
    scheme, _, rest = headers["authorization"].partition(" COSY.")
    payload_b64, signature = rest.split(".")
    assert scheme == "Bearer"
    aes_key = private_key.decrypt(base64.b64decode(headers["cosy-key"]), asymmetric_padding.PKCS1v15())
    assert len(aes_key) == 16 and aes_key.isascii()
    payload = json.loads(base64.b64decode(payload_b64))
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key)).decryptor()  # the IV is the key
    padded = decryptor.update(base64.b64decode(payload["info"])) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    info = json.loads(unpadder.update(padded) + unpadder.finalize())
    assert info == {"uid": "user-42", "security_oauth_token": "dt-secret-token-value", "name": "Ada", "aid": "",
                    "email": "ada@example.com"}
    assert payload["version"] == "v1" and payload["cosyVersion"] == headers["cosy-version"] == "0.2.16"
    assert payload["requestId"] == headers["x-request-id"] and payload["ideVersion"] == ""
    sig_path = "/api/v2/service/pro/sse/agent_chat_generation"
    expected = hashlib.md5(f"{payload_b64}\n{headers['cosy-key']}\n1700000000\n".encode() + body
                           + f"\n{sig_path}".encode()).hexdigest()
    assert signature == expected
    assert headers["cosy-date"] == "1700000000" and headers["cosy-sigpath"] == sig_path
    assert headers["cosy-bodyhash"] == hashlib.md5(body).hexdigest()
    assert headers["cosy-bodylength"] == str(len(body))
    assert headers["cosy-user"] == "user-42"
    assert headers["cosy-machineid"] == headers["cosy-machinetoken"] == "machine-1"
    assert headers["cosy-clienttype"] == headers["cosy-machinetype"] == "5"
    assert headers["cosy-data-policy"] == "disagree" and headers["login-version"] == "v2"
    assert {"cosy-machineos", "cosy-clientip", "cosy-organization-id", "cosy-organization-tags"} <= set(headers)
    assert headers["user-agent"].startswith("crossroute/")


def test_each_signature_has_its_own_key_and_the_model_list_path_is_signed_without_algo(
        private_key: rsa.RSAPrivateKey) -> None:
    first, second = (cosy_headers(USER, "https://x/algo/api/v2/model/list", b"") for _ in range(2))
    assert first["cosy-key"] != second["cosy-key"] and first["x-request-id"] != second["x-request-id"]
    assert signature_path("https://x/algo/api/v2/model/list?Encode=1") == "/api/v2/model/list"
    assert first["cosy-bodylength"] == "0"


def signed_call(fake: FakeQoder, token: str, body: bytes, path: str = CHAT, drop: str | None = None,
                tamper: bool = False) -> httpx.Response:
    user = CosyUser(fake.identity.user_id, token, "", fake.identity.email, "machine-1")
    headers = cosy_headers(user, f"{fake.url}{path}", body)
    if drop:
        del headers[drop]
    sent = body + b" " if tamper else body
    method = "POST" if body else "GET"
    return httpx.request(method, f"{fake.url}{path}", content=sent, headers=headers, timeout=10)


def chat_body(fake: FakeQoder, **changes: Any) -> bytes:
    body = {"session_type": "qodercli", "model_config": {"key": "auto"}, "stream": True,
            "messages": [{"role": "user", "content": "hi"}], "tools": [], **changes}
    return json.dumps(body).encode()


def test_the_fake_verifies_the_signature_and_refuses_every_wrong_part(qoder: FakeQoder) -> None:
    token = qoder.issue_device_token()["token"]
    ok = signed_call(qoder, token, chat_body(qoder))
    assert ok.status_code == 200 and '"statusCodeValue":200' in ok.text and "[DONE]" in ok.text
    assert qoder.signed[-1].token == token and qoder.signed[-1].info["uid"] == qoder.identity.user_id
    for drop in ("cosy-sigpath", "cosy-bodyhash", "cosy-bodylength", "cosy-key", "authorization"):
        refused = signed_call(qoder, token, chat_body(qoder), drop=drop)
        assert (refused.status_code, refused.json()["message"]) == (403, "Signature invalid"), drop
    tampered = signed_call(qoder, token, chat_body(qoder), tamper=True)
    assert (tampered.status_code, tampered.json()["message"]) == (403, "Signature invalid")
    listed = signed_call(qoder, token, b"", "/algo/api/v2/model/list")
    assert listed.status_code == 200 and "qmodel" in {m["key"] for m in listed.json()["chat"]}
    qoder.expire_tokens()
    assert signed_call(qoder, token, chat_body(qoder)).status_code == 401


def test_a_signature_for_another_key_is_refused(qoder: FakeQoder, private_key: rsa.RSAPrivateKey) -> None:
    token = qoder.issue_device_token()["token"]
    refused = signed_call(qoder, token, chat_body(qoder))  # signed for the test's key, not the fake's
    assert (refused.status_code, refused.json()["message"]) == (403, "Signature invalid")


def test_the_fake_applies_qoders_body_rules(qoder: FakeQoder) -> None:
    token = qoder.issue_device_token()["token"]
    parts = [{"type": "text", "text": "hi"}]
    assert signed_call(qoder, token, chat_body(qoder, messages=[{"role": "user", "content": parts}])
                       ).status_code == 400
    assert signed_call(qoder, token, chat_body(qoder, messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])).status_code == 500
    unknown = signed_call(qoder, token, chat_body(qoder, model_config={"key": "no-such-model"}))
    assert unknown.status_code == 400 and "no-such-model" in unknown.text
    assert signed_call(qoder, token, chat_body(qoder, session_type="ASSISTANT",
                                               model_config={"key": "qmodel"})).status_code == 200
    assert qoder.answered[-1].model == "auto"  # the wrong session type: the default model, silently


def test_the_sign_in_polling_is_pending_until_the_user_signs_in(qoder: FakeQoder) -> None:
    pkce = Pkce.new(48)
    poll = {"nonce": "n-1", "verifier": pkce.verifier, "challenge_method": "S256"}
    assert httpx.get(f"{qoder.url}/api/v1/deviceToken/poll", params=poll, timeout=10).status_code == 404
    page = httpx.get(f"{qoder.url}/device/selectAccounts", timeout=10, params={
        "challenge": pkce.challenge, "challenge_method": "S256", "nonce": "n-1", "machine_id": "m", "client_id": "c"})
    assert page.status_code == 200
    assert httpx.get(f"{qoder.url}/api/v1/deviceToken/poll", params=poll, timeout=10).status_code == 404
    qoder.approve()
    wrong = {**poll, "verifier": Pkce.new(48).verifier}
    assert httpx.get(f"{qoder.url}/api/v1/deviceToken/poll", params=wrong, timeout=10).status_code == 400
    answer = httpx.get(f"{qoder.url}/api/v1/deviceToken/poll", params=poll, timeout=10).json()
    assert answer["token"].startswith("dt-") and answer["user_id"] == qoder.identity.user_id
    expires = qoder_login.expiry_of(answer)
    assert expires is not None and abs(expires - (qoder.now() + 30 * 86400)) < 5
    refused = httpx.post(f"{qoder.url}/api/v1/deviceToken/refresh", json={"refresh_token": answer["refresh_token"]},
                         timeout=10)
    assert refused.status_code == 403  # device tokens are not refreshed


def test_a_personal_token_is_exchanged_for_a_job_token(qoder: FakeQoder) -> None:
    personal = qoder.personal_token()
    with control_client(qoder.url, None) as http:
        answer = qoder_login.exchange_personal_token(http, qoder.url, personal)
        token = qoder_login.QoderLogin().refresh(http, qoder.url, OAuthToken(
            answer["token"], personal, 0.0, {"login": "token", "user_id": "u"}))
        with pytest.raises(qoder_login.RefreshRejected):
            qoder_login.exchange_personal_token(http, qoder.url, "pt-unknown")
        with pytest.raises(qoder_login.RefreshRejected):
            qoder_login.QoderLogin().refresh(http, qoder.url, OAuthToken("dt-x", "drt-x", 0.0, {"login": "browser"}))
    assert answer["token"].startswith("jt-") and token.access_token.startswith("jt-")
    assert token.access_token != answer["token"] and token.refresh_token == personal
    assert token.expires_at is not None and abs(token.expires_at - (qoder.now() + 86400)) < 5
    assert qoder.counters.refresh_calls == 0  # a job token is renewed by exchanging the personal token again


def test_parts_are_joined_into_one_string_and_system_text_is_taken_out() -> None:
    messages, system = qoder_messages([
        {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
        {"role": "developer", "content": "use metric units"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                                               "function": {"name": "f", "arguments": "{}"}}]}])
    assert system == "be brief\n\nuse metric units"
    assert [(m["role"], m["content"]) for m in messages] == [("user", "a\nb"), ("assistant", "")]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "f"
