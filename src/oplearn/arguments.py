"""The conventions of oplearn's command-line options, shared by every command.

* :class:`ArgumentParser`: a malformed command line is one line ``error: ...`` (exit status
  2), help shows each option's default, and lists of numbers may start with a minus sign
  (``--point -0.6,0.2``).
* :func:`complete_help` gives every option a help text (:data:`COMMON_HELP` for the shared ones).
* Argument types that refuse bad values while parsing, before any work: :func:`positive_int`,
  :func:`file_argument` and :func:`dir_argument` (destinations, :mod:`oplearn.paths`).

A module adding a command (``add_command(subparsers)``) gets all of this from the parser it is given.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from oplearn.errors import OutputError, UsageError
from oplearn.paths import output_dir, output_file

#: Help of options that several commands share, for those whose parser gives none.
COMMON_HELP = {
    "seed": "random seed (the same seed gives the same result)",
    "device": "torch device: cpu, cuda, cuda:1, ...",
    "no_progress": "print no progress (by default: a bar in a terminal, timed lines with an estimate of the time left in a log)",
    "overwrite": "replace an existing output",
    "out": "where to write",
}


class HelpFormatter(argparse.HelpFormatter):
    """Help text with each option's default (when it has one worth showing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, [], argparse.SUPPRESS) or action.nargs == 0:
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with oplearn's conventions: a malformed command line is one line ``error: ...``
    (exit status 2, through :class:`~oplearn.errors.UsageError`), help shows defaults, and values
    that are lists of numbers may start with a minus sign (``--point -0.6,0.2``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        # argparse takes "-0.6,0.2" for an option; negative numbers and lists of numbers are values
        self._negative_number_matcher = re.compile(
            r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)*$"
        )

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def complete_help(parser: argparse.ArgumentParser) -> None:
    """Give every option of every command a help text: the shared ones of :data:`COMMON_HELP`,
    else the choices (commands added by other modules may leave some out)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                complete_help(child)
        elif action.help is None:
            if action.dest in COMMON_HELP:
                action.help = COMMON_HELP[action.dest]
            elif action.choices is not None:
                action.help = "one of: " + ", ".join(map(str, action.choices))


def _argument(check: Callable[[str, str], Path], option: str) -> Callable[[str], Path]:
    def parse(text: str) -> Path:
        try:
            return check(text, option)
        except OutputError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{option} ")) from None

    parse.__name__ = check.__name__  # argparse names the type in its messages
    return parse


def file_argument(option: str = "--out") -> Callable[[str], Path]:
    """An argparse ``type`` checking a file destination with :func:`output_file`."""
    return _argument(output_file, option)


def dir_argument(option: str = "--out") -> Callable[[str], Path]:
    """An argparse ``type`` checking a folder destination with :func:`output_dir`."""
    return _argument(output_dir, option)
