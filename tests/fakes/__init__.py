"""Fake upstream providers speaking the four wire formats, for tests.

    from tests.fakes import FakeUpstream, Turn, ToolCallSpec
    with FakeUpstream(api_key="up-key") as fake:
        fake.script(Turn(text="hello"), Turn(tool_calls=[ToolCallSpec("read", {"path": "a"})]))
        ...  # point a client at fake.url
        assert fake.requests[0].body["model"] == "m"

The fakes never import crossroute: they are the other side of the wire.
"""

from .script import Recorded, ToolCallSpec, Turn
from .server import FakeUpstream

__all__ = ["FakeUpstream", "Recorded", "ToolCallSpec", "Turn"]
