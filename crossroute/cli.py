"""The `crossroute` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from crossroute import __version__
from crossroute.config import Config, ConfigError, load_config
from crossroute.defaults import data_dir, default_config, describe

CONFIG_ENV = "CROSSROUTE_CONFIG"


def _load(path: str | None) -> Config:
    return load_config(path) if path else default_config()


def _state_path(config: Config) -> str:
    return config.state.path or str(data_dir() / "state.sqlite3")


def create_app():  # type: ignore[no-untyped-def]
    """App factory for uvicorn workers: the config path comes through the environment."""
    from crossroute.server.app import Gateway

    config = _load(os.environ.get(CONFIG_ENV) or None)
    return Gateway(config, _state_path(config))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    config = _load(args.config)
    if args.host:
        config.server.host = args.host
    if args.port is not None:
        config.server.port = args.port
    config.check_bind()
    print(describe(config), file=sys.stderr)
    server = config.server
    keys = "client keys required" if server.api_keys else "no client keys (loopback only)"
    print(f"crossroute {__version__} listening on http://{server.host}:{server.port} ({keys})", file=sys.stderr)
    workers = args.workers or server.workers or 1
    options = {"host": server.host, "port": server.port, "log_level": args.log_level, "access_log": False,
               "lifespan": "on", "loop": "auto", "http": "auto", "timeout_graceful_shutdown": 5}
    if workers > 1:
        if args.config:
            os.environ[CONFIG_ENV] = os.path.abspath(args.config)
        uvicorn.run("crossroute.cli:create_app", factory=True, workers=workers, **options)
    else:
        from crossroute.server.app import Gateway

        uvicorn.run(Gateway(config, _state_path(config)), **options)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if not config.providers:
        print(describe(config))
        return 1
    for provider in config.providers:
        for model in provider.models:
            alias = f"  (alias: {model.alias})" if model.alias else ""
            print(f"{provider.name}/{model.name}{alias}  [{provider.kind}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crossroute", description="Any AI coding agent, any model provider.")
    parser.add_argument("--version", action="version", version=f"crossroute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="YAML config file (default: providers from environment variables)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(func=cmd_serve)
    models = sub.add_parser("models", help="list the models the gateway routes to")
    models.add_argument("--config")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"crossroute: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
