"""The `crossroute` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from crossroute import __version__, logs
from crossroute.config import Config, ConfigError, ModelEntry, ProviderConfig, load_config
from crossroute.defaults import data_dir, default_config, describe
from crossroute.ir import FORMATS
from crossroute.launch import CLIENTS

if TYPE_CHECKING:
    from crossroute.accounts.model import Account
    from crossroute.accounts.report import AccountRow


def _load(path: str | None) -> Config:
    return load_config(path) if path else default_config()


def _state_path(config: Config) -> str:
    return config.state.path or str(data_dir() / "state.sqlite3")


def _command_line_settings(args: argparse.Namespace) -> Callable[[Config], None]:
    """What the command line sets over the config file: applied at start and again on each reload."""
    def apply(config: Config) -> None:
        if args.host:
            config.server.host = args.host
        if args.port is not None:
            config.server.port = args.port
        if args.workers:
            config.server.workers = args.workers
    return apply


def cmd_serve(args: argparse.Namespace) -> int:
    from crossroute.server.reload import ConfigSource
    from crossroute.server.serve import run

    config = _load(args.config)
    source = ConfigSource(args.config, _command_line_settings(args))
    source.overrides(config)
    config.check_bind()
    logs.setup(args.log_level, args.log_format or config.server.log_format,
               config.server.access_log and not args.no_access_log)
    print(describe(config), file=sys.stderr)
    if args.config is None:
        _print_found_logins()
    server = config.server
    keys = "client keys required" if server.api_keys else "no client keys (loopback only)"
    workers = server.workers or os.cpu_count() or 1
    try:
        stopped = run(config, _state_path(config), workers, source, announce=lambda: print(
            f"crossroute {__version__} listening on http://{server.host}:{server.port} ({keys}, "
            f"{workers} worker{'s' if workers > 1 else ''})", file=sys.stderr, flush=True))
    except OSError as exc:
        print(f"crossroute: cannot listen on {server.host}:{server.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return stopped


def _print_found_logins() -> None:
    """The zero-config start names the agent CLIs' logins it sees, and the command that would use each."""
    from crossroute.oauth.discovery import describe_found, find_logins

    for line in describe_found(find_logins()):
        print(line, file=sys.stderr)


def cmd_models(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if not config.providers:
        print(describe(config))
        return 1
    for provider in config.providers:
        for model in _listed_models(provider, config):
            if provider.hides(model):
                continue
            alias = f"  (alias: {model.alias})" if model.alias else ""
            print(f"{provider.name}/{model.name}{alias}  [{provider.kind}]")
    return 0


def _listed_models(provider: ProviderConfig, config: Config) -> list[ModelEntry]:
    """The config's models; for a login provider without `models:`, its live list as last cached."""
    if provider.is_login and not provider.models_configured:
        from crossroute.oauth.models import models_file_for, read_cache

        assert provider.base_url is not None
        cached = read_cache(models_file_for(_state_path(config), provider.name), provider.base_url)
        if cached is not None:
            return [ModelEntry(name=name) for name in cached["models"]]
    return provider.models


def cmd_launch(args: argparse.Namespace) -> int:
    from crossroute import launch

    config = _load(args.config)
    host = config.server.host if config.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = (args.url or f"http://{host}:{config.server.port}").rstrip("/")
    key = args.key or (config.server.api_keys[0] if config.server.api_keys else None)
    model = args.model or next((m.alias or m.name for p in config.providers for m in p.models), None)
    if model is None:
        print("crossroute: no model to launch with: pass --model NAME (see `crossroute models`)", file=sys.stderr)
        return 2
    try:
        return launch.run(args.client, launch.Gateway(url, key), model, args.client_args, program=args.bin,
                          fmt=args.format, print_only=args.print)
    except FileNotFoundError as exc:
        print(f"crossroute: {exc}", file=sys.stderr)
        return 127
    except OSError as exc:  # a --bin that is a directory, not executable, or not a program
        print(f"crossroute: cannot start {args.bin or args.client}: {exc.strerror or exc}", file=sys.stderr)
        return 126
    except ValueError as exc:
        print(f"crossroute: {exc}", file=sys.stderr)
        return 2


def cmd_accounts(args: argparse.Namespace) -> int:
    from crossroute.accounts.store import AccountStore

    config = _load(args.config)
    store = AccountStore.open(config)
    if args.action is None:
        return _print_accounts(store.snapshot(), config, args.json)
    if args.id is None:
        print(f"crossroute: accounts {args.action} needs an account ID (see crossroute accounts)", file=sys.stderr)
        return 2
    if store.get(args.id) is None:
        print(f"crossroute: no account {args.id} (see crossroute accounts)", file=sys.stderr)
        return 2
    store.set_disabled(args.id, args.action == "disable")
    account = store.get(args.id)
    assert account is not None
    row = _account_rows([account], config)[0]
    print(f"{account.id}: {row.describe_state(time.time())}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    from crossroute.oauth.base import LoginFailed
    from crossroute.oauth.command import UsageError, list_logins, run_login

    if args.list:
        list_logins(sys.stdout)
        return 0
    if not args.provider:
        print("crossroute: login needs a provider (a provider name from the config or a login kind; "
              "see crossroute login --list)", file=sys.stderr)
        return 2
    config = _load(args.config)
    try:
        run_login(config, args.provider, label=args.label, device=args.device, browser=args.browser,
                  import_path=args.import_path, token=args.token, open_browser=not args.no_browser)
    except UsageError as exc:
        print(f"crossroute: {exc}", file=sys.stderr)
        return 2
    except LoginFailed as exc:
        print(f"crossroute: login failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncrossroute: login cancelled", file=sys.stderr)
        return 130
    return 0


def _print_accounts(accounts: list[Account], config: Config, as_json: bool) -> int:
    import orjson

    from crossroute.accounts.report import render_table

    table = _account_rows(accounts, config)
    if as_json:
        print(orjson.dumps([row.as_json() for row in table], option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_table(table))
    return 0


def _account_rows(accounts: list[Account], config: Config) -> list[AccountRow]:
    """The accounts with the state the gateway's workers share (read-only: a gateway never started reads as zeros)."""
    from crossroute.accounts.report import rows, with_reported_quotas
    from crossroute.state.accounts import read_views, state_file_for

    views = read_views(state_file_for(_state_path(config)), [account.id for account in accounts])
    return rows(accounts, with_reported_quotas(accounts, views, config.providers))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossroute", description="Any AI coding agent, any model provider.")
    parser.add_argument("--version", action="version", version=f"crossroute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="YAML config file (default: providers from environment variables)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="worker processes (default: server.workers, else one per core)")
    serve.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                       help="for everything but the access log (default: warning)")
    serve.add_argument("--log-format", choices=["text", "json"], help="log lines on stderr (default: server.log_format)")
    serve.add_argument("--no-access-log", action="store_true", help="no line per request (server.access_log: false)")
    serve.set_defaults(func=cmd_serve)
    models = sub.add_parser("models", help="list the models the gateway routes to")
    models.add_argument("--config")
    models.set_defaults(func=cmd_models)
    accounts = sub.add_parser("accounts", help="list the accounts and their state, or disable/enable one",
                              description="Without an action: a table of the accounts (the config's keys and "
                                          "the auth dir's files) with the running gateway's shared state.")
    accounts.add_argument("action", nargs="?", choices=("disable", "enable"))
    accounts.add_argument("id", nargs="?", help="the account id (see `crossroute accounts`)")
    accounts.add_argument("--config")
    accounts.add_argument("--json", action="store_true", help="a JSON list instead of the table")
    accounts.set_defaults(func=cmd_accounts)
    login = sub.add_parser("login", help="log in to a provider's subscription (an account in the auth dir)",
                           description="Log in with the provider's own login (a device code, or a browser) and "
                                       "keep the account in the auth dir. Log in again with another --label for "
                                       "a second account; with the same label to renew one.")
    login.add_argument("provider", nargs="?", help="a provider name from the config, or a login kind")
    login.add_argument("--list", action="store_true", help="the login providers and their status")
    login.add_argument("--config")
    login.add_argument("--label", help="the account's label (default: the provider's name)")
    how = login.add_mutually_exclusive_group()
    how.add_argument("--device", action="store_true", help="log in with a device code")
    how.add_argument("--browser", action="store_true", help="log in in a browser on this machine")
    how.add_argument("--import", dest="import_path", nargs="?", const="", metavar="PATH",
                     help="use a login you already have (the provider CLI's credential file, or PATH)")
    how.add_argument("--token", action="store_true",
                     help="log in with a token you give (a personal access token or API key): typed at a prompt "
                          "that does not echo it, or piped on stdin; never an argument")
    login.add_argument("--no-browser", action="store_true", help="do not open a browser; print the address")
    login.set_defaults(func=cmd_login)
    launch = sub.add_parser("launch", help="start an agent CLI configured to use the gateway",
                            description=f"Start {', '.join(CLIENTS)} pointed at the gateway "
                                        "(address and key from the config), in a temporary config dir.")
    launch.add_argument("client", choices=CLIENTS)
    launch.add_argument("--model", help="any model the gateway routes: name, alias or provider/model")
    launch.add_argument("--config", help="the gateway's YAML config (for its address and key)")
    launch.add_argument("--url", help="the gateway's address, overriding the config")
    launch.add_argument("--key", help="the client key, overriding the config")
    launch.add_argument("--bin", help="path of the client program (default: found on PATH)")
    launch.add_argument("--format", choices=FORMATS,
                        help="the wire format the client speaks to the gateway, for clients that speak more than one "
                             "(default: the one its users use most)")
    launch.add_argument("--print", action="store_true", help="print the environment and config instead of starting")
    launch.set_defaults(func=cmd_launch)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    client_args: list[str] = []
    if "--" in argv:  # everything after `--` belongs to the launched client
        split = argv.index("--")
        argv, client_args = argv[:split], argv[split + 1:]
    args = build_parser().parse_args(argv)
    args.client_args = client_args
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"crossroute: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
