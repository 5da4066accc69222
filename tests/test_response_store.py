"""The Responses store seen by two client keys: a stored response belongs to
the key that made it; every other key gets the 404 a missing id gets."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from crossroute import ir
from crossroute.state.codec import messages_to_json
from tests.conftest import CLIENT_KEY, MODELS, gateway_config
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import RunningGateway

OTHER_KEY = "sk-client-other"
MISSING_ID = "resp_0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def two_keys(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = gateway_config(fake.url)
    config["server"]["api_keys"] = [CLIENT_KEY, OTHER_KEY]
    with RunningGateway(config, tmp_path_factory.mktemp("store") / "state.db") as running:
        yield running


def sdk(gateway: RunningGateway, key: str) -> Any:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=20)


def create(client: Any, stream: bool, **kwargs: Any) -> Any:
    if not stream:
        return client.responses.create(model=MODELS["anthropic"], **kwargs)
    with client.responses.stream(model=MODELS["anthropic"], **kwargs) as events:
        return events.get_final_response()


# What another key may try on a response id; each must fail as on an id that does not exist.
ACTIONS: dict[str, Callable[[Any, str], Any]] = {
    "retrieve": lambda client, rid: client.responses.retrieve(rid),
    "input_items": lambda client, rid: client.responses.input_items.list(rid),
    "continue": lambda client, rid: client.responses.create(model=MODELS["anthropic"], input="and?",
                                                            previous_response_id=rid),
    "delete": lambda client, rid: client.responses.delete(rid),
}


def not_found(action: Callable[[Any, str], Any], client: Any, response_id: str) -> openai.NotFoundError:
    with pytest.raises(openai.NotFoundError) as caught:
        action(client, response_id)
    return caught.value


def error_shape(error: openai.NotFoundError, response_id: str) -> bytes:
    """The error as the client saw it, with the id it named taken out."""
    return error.response.content.replace(response_id.encode(), b"<id>")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_another_keys_response_looks_missing(stream: bool, two_keys: RunningGateway, clean_fake: FakeUpstream) -> None:
    owner, other = sdk(two_keys, CLIENT_KEY), sdk(two_keys, OTHER_KEY)
    clean_fake.script(Turn(text="the owner's answer"))
    first = create(owner, stream, input="only mine")
    upstream_calls = len(clean_fake.requests)
    for name, action in ACTIONS.items():
        theirs = not_found(action, other, first.id)
        missing = not_found(action, other, MISSING_ID)
        assert error_shape(theirs, first.id) == error_shape(missing, MISSING_ID), name
    assert len(clean_fake.requests) == upstream_calls  # the refused follow-up never reached the upstream
    assert owner.responses.retrieve(first.id).output_text == "the owner's answer"  # the other key's delete did nothing
    assert owner.responses.input_items.list(first.id).data[0].content[0].text == "only mine"
    clean_fake.script(Turn(text="continued"))
    second = create(owner, stream, input="go on", previous_response_id=first.id)
    assert second.output_text == "continued"
    assert "only mine" in str(clean_fake.requests[-1].body)
    owner.responses.delete(first.id)
    not_found(ACTIONS["retrieve"], owner, first.id)


def old_database(path: Path, response_id: str) -> None:
    """A state file as the code before owners wrote it, holding one response."""
    conversation = [ir.Message("user", [ir.Text("old question")]), ir.Message("assistant", [ir.Text("old answer")])]
    rendered = {"id": response_id, "object": "response", "created_at": 1, "status": "completed", "model": "m",
                "output": [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                            "content": [{"type": "output_text", "text": "old answer", "annotations": []}]}]}
    body = orjson.dumps({"messages": messages_to_json(conversation), "input_count": 1, "rendered": rendered})
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE responses (id TEXT PRIMARY KEY, expires_at REAL NOT NULL, body BLOB NOT NULL)")
        db.execute("CREATE INDEX responses_expiry ON responses (expires_at)")
        db.execute("INSERT INTO responses VALUES (?, ?, ?)", (response_id, 4e9, body))
    db.close()


def test_rows_from_before_owners_belong_to_the_keyless_owner(tmp_path: Path, fake: FakeUpstream) -> None:
    state = tmp_path / "old.db"
    old_database(state, "resp_old")
    keyed = gateway_config(fake.url)
    with RunningGateway(keyed, state) as gw:
        client = sdk(gw, CLIENT_KEY)
        not_found(ACTIONS["retrieve"], client, "resp_old")
        fake.clear()
        assert create(client, False, input="new").output_text == "ok"  # the migrated file takes new rows
    keyless = {**keyed, "server": {"api_keys": []}}
    with RunningGateway(keyless, state) as gw:
        client = sdk(gw, "anything")
        assert client.responses.retrieve("resp_old").output_text == "old answer"
        fake.script(Turn(text="continued"))
        assert create(client, True, input="more", previous_response_id="resp_old").output_text == "continued"
        assert "old question" in str(fake.requests[-1].body)


@contextmanager
def store_refuses_writes(state: Path) -> Iterator[None]:
    """A state file that fails every insert, as a full disk would."""
    with sqlite3.connect(state) as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON responses BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    db.close()
    try:
        yield
    finally:
        with sqlite3.connect(state) as db:
            db.execute("DROP TRIGGER refuse")
        db.close()


def test_a_response_that_cannot_be_stored_ends_in_an_error(tmp_path: Path, clean_fake: FakeUpstream) -> None:
    state = tmp_path / "state.db"
    with RunningGateway(gateway_config(clean_fake.url), state) as gw:
        client = sdk(gw, CLIENT_KEY)
        create(client, False, input="the store is fine")
        with store_refuses_writes(state):
            with pytest.raises(openai.InternalServerError) as caught:
                create(client, False, input="unstorable")
            assert "could not be stored" in caught.value.message
            events = list(client.responses.create(model=MODELS["anthropic"], input="unstorable", stream=True))
            kinds = [event.type for event in events]
            assert "response.completed" not in kinds and kinds[-1] == "response.failed"
            assert "could not be stored" in events[-1].response.error.message
            assert len(clean_fake.requests) == 3  # the upstream answered once each: no retry elsewhere
        assert create(client, True, input="stored again").output_text == "ok"
