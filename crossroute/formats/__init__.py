"""One module per wire format, both directions, all speaking `crossroute.ir`.

Every format module exposes the same names (the gateway looks them up through
`FORMAT_MODULES` below; nothing else in the code branches on a format name):

Client side (what an agent sends us / what we send back to it)
    parse_request(body: dict, *, model: str | None = None, stream: bool | None = None) -> ir.Request
        Raise ir.GatewayError(400, ...) for malformed input (wrong types,
        missing fields; the readers in `_input` do this). `model`/`stream`
        come from the URL for Gemini.
    render_response(resp: ir.Response, req: ir.Request) -> dict
    class StreamEncoder(req: ir.Request, **options):
        encode(event: ir.Event) -> bytes   # SSE bytes for the client ("" allowed)
        close() -> bytes                   # terminator; if no Finish/StreamError was
                                           # seen, end with this format's error event
    render_error(err: ir.GatewayError) -> dict   # JSON body in this format (status kept by caller)

Upstream side (what we send a provider / what it answers)
    render_request(req: ir.Request, model: str) -> dict
        The body for an upstream of this format, `model` being the upstream
        model name. Gemini's body has no model (it is in the URL).
    parse_response(body: dict) -> ir.Response
    class StreamDecoder():
        feed(chunk: bytes) -> list[ir.Event]   # raw upstream bytes, cut anywhere
        close() -> list[ir.Event]              # at EOF
    parse_error(status: int, body: bytes) -> ir.GatewayError
        Map an upstream error body to the canonical error (message, kind, code,
        retry hint found in the body; the caller adds Retry-After headers).
"""

from __future__ import annotations

from types import ModuleType

from crossroute.formats import anthropic, gemini, openai_chat, openai_responses

FORMAT_MODULES: dict[str, ModuleType] = {
    "openai-chat": openai_chat,
    "openai-responses": openai_responses,
    "anthropic": anthropic,
    "gemini": gemini,
}
