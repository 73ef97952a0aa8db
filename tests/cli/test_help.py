"""Help reads as lmm's own: no typer internals, an Examples section in every command, --version, shell
completion; usage errors are plain messages with exit code 2."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from lmmcli import __version__
from lmmcli.cli import app

runner = CliRunner()
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def help_of(*command) -> str:
    res = runner.invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_every_command_is_listed():
    assert {"fit", "compare", "predict", "ranef", "coef", "plot", "simulate"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_no_typer_internals(name):
    text = help_of(name)
    for leak in ("<str>", "<list", "<int>", "<float>", "<path>", "{", "}"):
        assert leak not in text, f"lmm {name} --help shows {leak!r}"
    usage = text.splitlines()[0]
    assert usage.startswith(f"Usage: lmm {name} [OPTIONS]") and "[[" not in usage


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_examples_of_itself(name):
    text = help_of(name)
    examples = text.split("Examples:", 1)[1].strip().splitlines()
    assert examples
    for line in examples:
        args = shlex.split(line.split("  #")[0])
        assert args[:2] == ["lmm", name]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_names_only_options_the_command_has(name):
    text = help_of(name)
    command = next(c for c in app.registered_commands if (c.name or c.callback.__name__) == name)
    import inspect

    params = inspect.signature(command.callback).parameters
    body = " ".join(text.split("Examples:")[0].split())
    for m in re.finditer(r"(?<![\w-])--([a-z][a-z-]+)", body):
        option = m.group(1)
        about_another_command = "lmm " in body[max(0, m.start() - 30):m.start()]
        assert option.replace("-", "_") in params or option == "help" or about_another_command, \
            f"lmm {name} --help mentions --{option}, which it does not have"


def test_simulate_help_names_no_model_option():
    assert "--model" not in help_of("simulate")


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.startswith(f"lmm {__version__}")


def test_shell_completion_is_offered_and_completes_commands(monkeypatch):
    assert "--install-completion" in help_of()
    monkeypatch.setenv("_LMM_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "lmm fi")
    monkeypatch.setenv("COMP_CWORD", "1")
    res = runner.invoke(app, [], prog_name="lmm")
    assert "fit" in res.stdout.split()


@pytest.mark.parametrize("args, message", [
    (["fit", "d.csv", "y ~ x", "--level", "abc"], "Invalid value for '--level': expected a number"),
    (["fit", "d.csv", "y ~ x", "--nsim", "1.5"], "Invalid value for '--nsim': expected a whole number"),
    (["fit", "d.csv", "y ~ x", "--format", "xml"], "'xml' is not one of"),
])
def test_usage_errors_carry_no_validation_prefixes(args, message):
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and message in res.stderr
    assert "Value error" not in res.stderr and "Input should be" not in res.stderr


def test_the_command_list_shows_whole_first_sentences():
    text = help_of()
    listing = " ".join(text.split("Commands:", 1)[1].split())
    assert "..." not in listing.replace("(m1, m2, ...)", "").replace("--groups ... --sd-resid", "")
    assert "(REML by default)" in listing
