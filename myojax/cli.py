"""The one way to write a command.

A command is a module run as ``python -m NAME`` (``NAME.py``, or ``NAME/__main__.py`` for a
package) that does nothing but its command line: a parser from ``parser()``, flags generated
from frozen config dataclasses by ``add_config_flags`` (their help text lives on the dataclass
fields, so a flag is spelled the same in every command: ``--d-model``, ``--n-layers``,
``--gradient-mode``), one call into the library, and printing. It defines
``main(argv=None) -> int`` and ends with ``if __name__ == "__main__": sys.exit(run(main))``.
Library code never lives in a command module, and library code never imports one.

``run`` turns the errors a user can cause into one ``error:`` line on stderr (exit 2 for a
request that cannot be met, 1 for unreadable data, checkpoints or a full disk); ``--debug`` or
``MYOJAX_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

DEBUG_ENV = "MYOJAX_DEBUG"


class UsageError(ValueError):
    """A request that cannot be met as asked (a bad flag value, a missing input file)."""


def parser(prog: str, doc: str | None, *, epilog: str | None = None) -> argparse.ArgumentParser:
    """A command's parser: ``doc`` (the module docstring) is its --help text; ``--debug`` is
    on every command."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=doc,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help=f"show tracebacks (also {DEBUG_ENV}=1); by default every error is one line",
    )
    return p


def parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def flag(name: str) -> str:
    """The one spelling of a config field as a flag: ``d_model`` -> ``--d-model``."""
    return "--" + name.replace("_", "-")


def _flag_type(hint: Any) -> dict[str, Any]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return {"choices": list(args), "type": str}
    if hint is bool:
        return {"type": parse_bool, "metavar": "BOOL"}
    if type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        return {
            "type": lambda s, t=inner: None if s.lower() == "none" else t(s),
            "metavar": f"{inner.__name__.upper()}|none",
        }
    if typing.get_origin(hint) is tuple:  # tuple[X, ...]: comma-separated
        inner = args[0]
        return {
            "type": lambda s, t=inner: tuple(t(x) for x in s.split(",") if x),
            "metavar": f"{inner.__name__.upper()},...",
        }
    return {"type": hint, "metavar": hint.__name__.upper()}


def add_config_flags(
    p: argparse.ArgumentParser,
    cls: type,
    *,
    defaults: Any = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    title: str | None = None,
) -> argparse._ArgumentGroup:
    """One flag per field of the dataclass ``cls`` (``only`` / ``skip`` select fields), in a
    group titled ``title``. Flags default to None (= not given), so ``config_from_args`` keeps
    the base config's value; the help shows ``defaults``' value (an instance) or the field's."""
    hints = typing.get_type_hints(cls)
    group = p.add_argument_group(title or f"{cls.__name__} fields")
    chosen = None if only is None else set(only)
    for f in dataclasses.fields(cls):
        if f.name in set(skip) or (chosen is not None and f.name not in chosen):
            continue
        default = getattr(defaults, f.name) if defaults is not None else f.default
        if default is dataclasses.MISSING:
            default = None
        help_text = f.metadata.get("help", "")
        group.add_argument(
            flag(f.name),
            dest=f.name,
            default=None,
            help=f"{help_text} (default {default!r})" if help_text else f"default {default!r}",
            **_flag_type(hints[f.name]),
        )
    return group


def config_from_args(base: Any, args: argparse.Namespace) -> Any:
    """``base`` (a frozen dataclass instance) with every flag the user gave replacing its
    field; validation errors of the dataclass surface as ValueError."""
    names = {f.name for f in dataclasses.fields(base)}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return dataclasses.replace(base, **given)


def comma_list(choices: Sequence[str], what: str) -> Callable[[str], tuple[str, ...]]:
    """A flag type for a comma-separated list drawn from ``choices``."""

    def parse(text: str) -> tuple[str, ...]:
        items = tuple(x for x in text.split(",") if x)
        bad = [x for x in items if x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"unknown {what} {bad}; known: {list(choices)}")
        return items

    return parse


def debug_requested(argv: Sequence[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


_NO_SPACE = re.compile(r"No space left on device|os_error_code='28'|ENOSPC")
_WHERE = re.compile(r'(?:local file|Failed writing:) "([^"]+)"')


def describe(e: BaseException) -> str:
    """One line for an error: the message of the errors myojax raises, a named full disk,
    type and message for the rest."""
    text = " ".join(str(e).split())
    if (isinstance(e, OSError) and e.errno == 28) or _NO_SPACE.search(text):
        where = e.filename if isinstance(e, OSError) and e.filename else None
        match = _WHERE.search(text)
        where = where or (match.group(1) if match else "the output directory")
        return (
            f"no space left on device while writing {where}; free space and rerun the same "
            "command: it resumes from what was saved"
        )
    known = (ValueError, OSError, RuntimeError, FloatingPointError, KeyError)
    return text if isinstance(e, known) and text else f"{type(e).__name__}: {text}"


def _exit_code(e: BaseException) -> int:
    # Unreadable data and checkpoints (DataError, CheckpointError: RuntimeErrors) and disk
    # faults are 1; a request that cannot be met (ValueError, KeyError) is 2. No import of
    # the library here: a command inside a library package must not close a package loop.
    if isinstance(e, OSError):
        return 1
    return 2 if isinstance(e, (ValueError, KeyError)) else 1


def run(main: Callable[..., int | None], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)`` and return its exit status; an exception becomes one ``error:``
    line (``describe``) unless --debug or MYOJAX_DEBUG asks for the traceback."""
    try:
        return int(main(argv) or 0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:
        if debug_requested(argv):
            raise
        print(f"error: {describe(e)}", file=sys.stderr, flush=True)
        return _exit_code(e)
