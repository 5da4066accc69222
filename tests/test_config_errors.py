"""Start-up and config errors as a user meets them: one line on stderr, exit
status 2, no traceback; environment references; the config/providers imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossroute.config import ConfigError, parse_config
from tests.test_cli import run

COMMANDS = (["serve"], ["models"], ["launch", "codex", "--print"])


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


# ---------------------------------------------------------------- the file itself


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_missing_config_file_is_one_line(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    line = one_line_error(run(*command, "--config", str(missing)))
    assert line == f"crossroute: config file {missing} not found"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_directory_as_config_file_is_one_line(command: list[str], tmp_path: Path) -> None:
    line = one_line_error(run(*command, "--config", str(tmp_path)))
    assert line == f"crossroute: config file {tmp_path} is a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "secret.yaml"
    config.write_text("server: {port: 1}\n")
    config.chmod(0)
    line = one_line_error(run("serve", "--config", str(config)))
    assert line == f"crossroute: config file {config} cannot be read: permission denied"


def test_a_config_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "binary.yaml"
    config.write_bytes(b"server:\n  host: \xff\xfe\n")
    line = one_line_error(run("models", "--config", str(config)))
    assert line.startswith(f"crossroute: config file {config} is not UTF-8 text")


# ---------------------------------------------------------------- environment references


def test_an_unset_variable_stops_the_start_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("providers:\n  - name: a\n    kind: openai\n    api_keys: [\"${MY_UNSET_KEY}\"]\n")
    line = one_line_error(run("serve", "--config", str(config), env=without("MY_UNSET_KEY")))
    assert line == f"crossroute: {config}:4: MY_UNSET_KEY is not set"


def test_a_default_stands_in_for_an_unset_variable(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("providers:\n  - name: a\n    kind: openai\n    api_keys: [k]\n"
                      "    models: [\"${CR_TEST_MODEL:-fallback-model}\"]\n")
    result = run("models", "--config", str(config), env=without("CR_TEST_MODEL"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "a/fallback-model  [openai]"


@pytest.mark.parametrize("value,environ,expected", [
    ("${V}", {"V": "set"}, "set"),
    ("${V:-dflt}", {}, "dflt"),
    ("${V:-dflt}", {"V": ""}, "dflt"),  # empty counts as unset when a default is given
    ("${V:-dflt}", {"V": "set"}, "set"),
    ("${V}", {"V": ""}, ""),
    ("${V:-}", {}, ""),
    ("pre-${V}-${W}", {"V": "a", "W": "b"}, "pre-a-b"),
    ("a$$b", {}, "a$b"),
    ("$${V}", {"V": "set"}, "${V}"),
    ("plain $HOME stays", {"HOME": "/root"}, "plain $HOME stays"),
])
def test_environment_references(value: str, environ: dict[str, str], expected: str) -> None:
    config = parse_config(f"providers:\n  - name: a\n    kind: openai\n    api_keys: ['{value}']\n", "c.yaml",
                          environ)
    assert config.providers[0].api_keys == [expected]


def test_a_value_read_from_the_environment_is_not_expanded_again() -> None:
    config = parse_config("providers:\n  - name: a\n    kind: openai\n    api_keys: [&k '${V}', *k]\n", "c.yaml",
                          {"V": "x$${W}"})
    assert config.providers[0].api_keys == ["x$${W}", "x$${W}"]


@pytest.mark.parametrize("value", ["${V", "${1V}", "${V:default}", "${}"])
def test_a_malformed_reference_names_its_line(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"server:\n  host: 127.0.0.1\nproviders:\n  - name: a\n    kind: openai\n    base_url: '{value}'\n",
                     "c.yaml", {"V": "x"})
    assert str(caught.value).startswith("c.yaml:6: a `${` that is not")


# ---------------------------------------------------------------- keys


def test_timeout_and_timeouts_first_byte_together_name_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("providers:\n  - name: a\n    kind: openai\n    timeout: 5\n    timeouts: {first_byte: 9}\n",
                     "c.yaml")
    assert "c.yaml:5: providers[0].timeouts: timeout is the old name of timeouts.first_byte" in str(caught.value)


def test_timeout_is_first_byte_and_the_defaults_hold() -> None:
    old, new = parse_config("providers:\n  - {name: a, kind: openai, timeout: 42}\n"
                            "  - {name: b, kind: openai, timeouts: {idle: 7}}\n").providers
    assert (old.timeouts.connect, old.timeouts.first_byte, old.timeouts.idle) == (15, 42, 300)
    assert (new.timeouts.connect, new.timeouts.first_byte, new.timeouts.idle) == (15, 600, 7)


@pytest.mark.parametrize("text,fragment", [
    ("providers:\n  - {name: a, kind: openai, timeouts: {idle: 0}}\n", "c.yaml:2: providers[0].timeouts.idle"),
    ("providers:\n  - {name: a, kind: openai, timeouts: {read: 3}}\n",
     "c.yaml:2: providers[0].timeouts.read: unknown key"),
    ("payload:\n  - match: {models: ['gpt-*']}\n    caps: {max_tokens: lots}\n",
     "c.yaml:3: payload[0].caps: the cap for 'max_tokens' must be a number, not 'lots'"),
    ("payload:\n  - caps: {max_tokens: true}\n", "c.yaml:2: payload[0].caps: the cap for 'max_tokens' must be a number"),
    ("payload:\n  - defaults: {'generationConfig..x': 1}\n",
     "c.yaml:2: payload[0].defaults: 'generationConfig..x' is not a field name or dotted path"),
    ("payload:\n  - remove: [model]\n", "c.yaml:2: payload[0].remove: 'model' is set by the gateway"),
    ("payload:\n  - overrides: {x: 1}\n    colour: red\n", "c.yaml:3: payload[0].colour: unknown key"),
    ("providers:\n  - {name: a, kind: openai}\npayload:\n  - match: {providers: [b]}\n",
     "c.yaml:4: payload: rule 0 (match.providers) names 'b', which is not a configured provider"),
    ("providers:\n  - {name: a, kind: openai, excluded_models: gpt-*}\n", "c.yaml:2: providers[0].excluded_models"),
])
def test_new_keys_are_checked_with_key_and_line(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert fragment in str(caught.value)


# ---------------------------------------------------------------- imports


@pytest.mark.parametrize("first,second", [("crossroute.config", "crossroute.providers"),
                                          ("crossroute.providers", "crossroute.config")])
def test_config_and_providers_import_in_either_order(first: str, second: str) -> None:
    script = (f"import sys, importlib\nimportlib.import_module({first!r})\n"
              "print('crossroute.providers' in sys.modules)\n"
              f"importlib.import_module({second!r})\n"
              "from crossroute.providers import KINDS\nfrom crossroute.kinds import DEFAULT_BASE_URLS\n"
              "assert set(KINDS) == set(DEFAULT_BASE_URLS), (set(KINDS), set(DEFAULT_BASE_URLS))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # the config reads kinds and presets as data: loading it does not load the provider classes
    assert result.stdout.strip() == ("False" if first == "crossroute.config" else "True")


def test_a_gateway_of_api_keys_does_not_load_the_login_stack(tmp_path: Path) -> None:
    script = ("import sys\nfrom crossroute.config import parse_config\nfrom crossroute.server.app import Gateway\n"
              "import crossroute.cli, crossroute.server.serve\n"
              "config = parse_config('providers: [{name: o, kind: openai, base_url: \"http://127.0.0.1:9/v1\", "
              "api_keys: [k]}]', 'c.yaml')\n"
              f"Gateway(config, {str(tmp_path / 'state.sqlite3')!r})\n"
              "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('httpx', 'authlib', 'jwt'))}),"
              " 'crossroute.oauth' in sys.modules)\n"
              "from crossroute.providers import KINDS\n"
              "print(KINDS['kimi'].__name__, 'crossroute.oauth' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[] False", "KimiProvider True"]
