"""The authorization code grant with PKCE (S256) and a loopback redirect, as a
client (RFC 8252): show the authorize address (and open a browser when there
is a display), take the redirect on `http://localhost:<port><path>` with a
small `http.server` in a thread, check its `state`, and exchange the code.

On a headless host the browser runs elsewhere and its redirect to localhost
goes nowhere: the user pastes the address the browser ended on instead
(`LoginContext.ask`), which is read while the callback server still listens
(an ssh port forward reaches it). The first of the two wins."""

from __future__ import annotations

import html
import queue
import threading
import time
import webbrowser
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from authlib.oauth2.rfc6749.errors import MismatchingStateException, MissingCodeException
from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response, prepare_grant_uri

from crossroute.oauth.base import LoginContext, LoginFailed, error_code, json_object
from crossroute.oauth.device import has_display
from crossroute.oauth.pkce import Pkce

LOGIN_WAIT = 5 * 60.0  # seconds the login waits for the redirect (CLIProxyAPI's and Codex's wait)
_DENIED = "the sign-in was denied (access_denied)"


@dataclass(frozen=True, slots=True)
class CodeGrant:
    """One kind's authorization code endpoints and parameters."""

    authorize_url: str
    token_url: str
    client_id: str
    scope: str
    port: int  # the loopback port registered with the OAuth server
    path: str  # the callback's path
    verifier_bytes: int = 32
    params: Mapping[str, str] = field(default_factory=dict)  # more authorize parameters

    @property
    def redirect_uri(self) -> str:
        return f"http://localhost:{self.port}{self.path}"


def run_browser_flow(grant: CodeGrant, ctx: LoginContext) -> dict[str, Any]:
    """The token answer once the user signed in; LoginFailed with a one-line reason otherwise."""
    pkce = Pkce.new(grant.verifier_bytes)
    state = Pkce.new().verifier  # 32 random bytes, base64url
    url = prepare_grant_uri(grant.authorize_url, grant.client_id, "code", grant.redirect_uri, grant.scope, state,
                            code_challenge=pkce.challenge, code_challenge_method=pkce.method, **grant.params)
    answers: queue.Queue[str | None] = queue.Queue()
    with callback_server(grant, state, answers) as listening:
        print(f"To sign in, open {url}", file=ctx.out)
        if not (listening and _opened(url, ctx)):
            where = "" if listening else f" (port {grant.port} is taken here, so the redirect cannot arrive)"
            print(f"Without a browser on this machine{where}: sign in from any browser, then paste here the "
                  f"address it ended on (it starts with {grant.redirect_uri}).", file=ctx.out)
            _read_pasted(ctx, answers)
        ctx.out.flush()
        redirect = _first_answer(answers, listening)
    code = code_from_redirect(redirect, state)
    return exchange_code(ctx.http, grant.token_url, grant.client_id, code, grant.redirect_uri, pkce.verifier)


def code_from_redirect(redirect: str, state: str) -> str:
    """The authorization code in the redirect's address, once its state is this login's."""
    query = dict(parse_qsl(urlsplit(redirect.strip()).query))
    if "error" in query:
        word = error_code(query)
        raise LoginFailed(_DENIED if word == "access_denied" else f"the OAuth server refused the login ({word})")
    try:
        return str(parse_authorization_code_response(redirect.strip(), state)["code"])
    except MissingCodeException:
        raise LoginFailed("that address holds no authorization code (paste the whole address the browser "
                          "ended on)") from None
    except MismatchingStateException:
        raise LoginFailed("the redirect's state is not this login's (a stale or forged address); run the "
                          "command again") from None


def exchange_code(http: httpx.Client, token_url: str, client_id: str, code: str, redirect_uri: str,
                  verifier: str) -> dict[str, Any]:
    form = {"grant_type": "authorization_code", "client_id": client_id, "code": code,
            "redirect_uri": redirect_uri, "code_verifier": verifier}
    try:
        answer = http.post(token_url, data=form)
    except httpx.HTTPError as exc:
        raise LoginFailed(f"the OAuth server could not be reached ({type(exc).__name__})") from None
    data = json_object(answer)
    if answer.status_code == 200 and isinstance(data.get("access_token"), str):
        return data
    raise LoginFailed(f"the OAuth server refused the code ({error_code(data) or f'HTTP {answer.status_code}'})")


@contextmanager
def callback_server(grant: CodeGrant, state: str, answers: queue.Queue[str | None]) -> Iterator[bool]:
    """A server on 127.0.0.1:<port> putting the callback's address into `answers`;
    yields False when the port cannot be had (the paste still works)."""
    handler = _handler_for(grant, state, answers)
    try:
        server = HTTPServer(("127.0.0.1", grant.port), handler)
    except OSError:
        yield False
        return
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                              name="login-callback")
    thread.start()
    try:
        yield True
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _handler_for(grant: CodeGrant, state: str, answers: queue.Queue[str | None]) -> type[BaseHTTPRequestHandler]:
    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if urlsplit(self.path).path != grant.path:
                self._page(404, "Not the sign-in callback.")
                return
            query = dict(parse_qsl(urlsplit(self.path).query))
            failed = "error" in query or "code" not in query or query.get("state") != state
            self._page(400 if failed else 200, "The sign-in did not complete; see the terminal." if failed
                       else "Signed in. You can close this window and go back to the terminal.")
            answers.put(f"http://localhost:{grant.port}{self.path}")

        def _page(self, status: int, text: str) -> None:
            body = f"<!doctype html><title>crossroute</title><p>{html.escape(text)}</p>".encode()
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: never logged
            pass

    return Callback


def _opened(url: str, ctx: LoginContext) -> bool:
    if not (ctx.open_browser and has_display()):
        return False
    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        return False
    if opened:
        print("A browser was opened at that address.", file=ctx.out)
    return opened


def _read_pasted(ctx: LoginContext, answers: queue.Queue[str | None]) -> None:
    """Reads the pasted address in a thread (the callback may come first); no input at all: None."""
    def read() -> None:
        try:
            while not (line := ctx.ask("Address: ").strip()):  # an empty line: ask again
                pass
            answers.put(line)
        except (EOFError, OSError, ValueError):
            answers.put(None)

    threading.Thread(target=read, daemon=True, name="login-paste").start()


def _first_answer(answers: queue.Queue[str | None], listening: bool) -> str:
    """The first redirect address to arrive within LOGIN_WAIT (a closed input is no answer while the
    callback can still come)."""
    deadline = time.monotonic() + LOGIN_WAIT
    while (left := deadline - time.monotonic()) > 0:
        try:
            answer = answers.get(timeout=left)
        except queue.Empty:
            break
        if answer:
            return answer
        if not listening:
            raise LoginFailed("no address was pasted; run the command again")
    raise LoginFailed(f"the sign-in did not finish within {LOGIN_WAIT / 60:g} minutes; run the command again")
