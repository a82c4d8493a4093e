"""Every ``hil`` subcommand's ``--help`` says what the code does about the default model.

The default is :func:`harness.models.zoo.default_model_file`: the MLPerf Tiny reference
(mlperf-vww-96) where present, else the shipped vww-default. Help that says "the shipped
model" sends a user to the wrong figures, so every help page is walked here.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from harness.cli import build_parser
from harness.models.default import DEFAULT_MODEL, DEFAULT_MODEL_HELP, REFERENCE_MODEL

Command = tuple[str, argparse.ArgumentParser]


def _commands(parser: argparse.ArgumentParser, prefix: str = "hil") -> Iterator[Command]:
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


COMMANDS = dict(_commands(build_parser()))


def test_the_walk_reaches_the_commands_with_a_default_model() -> None:
    assert {"hil bench", "hil analyze", "hil build", "hil serve", "hil data export"} <= COMMANDS.keys()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_names_the_default_model_as_the_code_resolves_it(command: str) -> None:
    parser = COMMANDS[command]
    text = " ".join(parser.format_help().split())
    assert "shipped model" not in text, f"{command} --help still says 'the shipped model'"
    for action in parser._actions:
        if action.dest != "model" or action.default is not None or action.required:
            continue
        if action.nargs not in (None, "?"):
            continue
        words = " ".join((action.help or "").split())
        assert (DEFAULT_MODEL_HELP in words or "as hil bench" in words), (
            f"{command}: the default of {action.option_strings or action.dest} is not named "
            f"({words!r}); it is {REFERENCE_MODEL} where present, else {DEFAULT_MODEL}"
        )


def test_train_compare_shows_backbone_as_required() -> None:
    usage = " ".join(COMMANDS["hil train-compare"].format_usage().split())
    assert " --backbone BACKBONE" in usage and "[--backbone BACKBONE]" not in usage
    usage = " ".join(COMMANDS["hil train"].format_usage().split())
    assert "[--backbone BACKBONE]" in usage
