"""What every flow in ``flows/`` shares: Prefect's settings, one-line failures, I/O-only retries, flows as commands.

Flow files import Prefect through this module only, so the settings below are in place before Prefect reads its
configuration (it does so once, when it is first imported). Each is a default: a variable already set wins.

- ``PREFECT_HOME``: the checkout's ``.prefect/`` folder (Prefect's own default, ``~/.prefect``, outside one);
- ``PREFECT_SERVER_EPHEMERAL_ENABLED=true``: with no ``PREFECT_API_URL``, a flow starts a local API of its own;
- ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90``: Prefect's 20 s is too short on a busy 2-core machine;
- ``PREFECT_SERVER_ANALYTICS_ENABLED=false``, ``PREFECT_LOGGING_LEVEL=WARNING``: no telemetry, quiet logs.

A flow's body is wrapped so that an error the user can act on (bad input, bad settings, a full disk) ends the run
in a Failed state whose message is the one line the command line would print, not a traceback; a subflow's such
failure fails its parent with the same line. Tasks retry only when the file system failed, never for bad content.
Each flow file is also a command (:func:`command`): its options are the flow's parameters (the names, units and
defaults of the ``finwatch`` command), errors print one line and exit with status 2, and it prints a short summary.
"""

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def _prefect_defaults() -> dict[str, str]:
    defaults = {
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "flows").is_dir():
        defaults["PREFECT_HOME"] = str(_CHECKOUT / ".prefect")
    return defaults


PREFECT_DEFAULTS = _prefect_defaults()
for _name, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

# Prefect reads its settings when first imported: only after the defaults above.
import argparse  # noqa: E402
import functools  # noqa: E402
import inspect  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
import typing  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

from prefect import Flow, flow, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.exceptions import FailedRun  # noqa: E402
from prefect.states import Failed  # noqa: E402

from finwatch.exceptions import user_message  # noqa: E402

__all__ = [
    "PREFECT_DEFAULTS",
    "command",
    "finwatch_flow",
    "finwatch_task",
    "io_failure",
    "summary_artifact",
]

F = TypeVar("F", bound=Callable[..., Any])

# failures that trying again cannot mend, although they are OSErrors
_FINAL = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


def io_failure(task: Any, task_run: Any, state: Any) -> bool:
    """A task's retry condition: retry when the file system failed, never because the content or settings were bad."""
    try:
        state.result()
    except _FINAL:
        return False
    except OSError:
        return True
    except BaseException:  # any other failure is final
        return False
    return False


def _one_line_failures(fn: F) -> F:
    """End the run in a Failed state with the user's one line when the error is one they can act on."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FailedRun as exc:  # a subflow ended in such a failure: the parent fails with the same line
            return Failed(message=str(exc))
        except Exception as exc:
            message = user_message(exc)
            if message is None:  # a fault of finwatch itself: Prefect records the traceback
                raise
            return Failed(message=message)

    return wrapper  # type: ignore[return-value]


class _FailureWithoutTraceback(logging.Filter):
    """A run that a worker started and that ended in such a Failed state is logged as its one line.

    Prefect's engine logs every failed deployment run as an "unexpected exception" with the traceback of the
    ``FailedRun`` it raises to set the process's exit code; for a user's error that traceback only hides the line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], FailedRun):
            record.msg, record.args = f"Failed: {record.exc_info[1]}", ()
            record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("prefect.flow_runs").addFilter(_FailureWithoutTraceback())


def finwatch_flow(name: str) -> Callable[[F], Any]:
    """``@flow`` with finwatch's conventions: one-line failures, parameters validated, results never persisted."""

    def decorate(fn: F) -> Any:
        return flow(name=name, validate_parameters=True, persist_result=False)(_one_line_failures(fn))

    return decorate


def finwatch_task(name: str, *, io_retries: int = 2) -> Callable[[F], Any]:
    """``@task`` with finwatch's conventions: retried only for I/O failures, never cached or persisted."""

    def decorate(fn: F) -> Any:
        return task(name=name, retries=io_retries, retry_delay_seconds=5, retry_condition_fn=io_failure,
                    cache_policy=NO_CACHE, persist_result=False)(fn)  # fmt: skip

    return decorate


def summary_artifact(key: str, columns: dict[str, Any], description: str) -> None:
    """A one-row markdown table as the run's artifact: aggregate figures only, never account ids."""
    cells = [f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in columns.values()]
    create_markdown_artifact(
        key=key,
        markdown=f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}\n| {' | '.join(cells)} |",
        description=description,
    )


# --- flows as commands -------------------------------------------------------------------------------------------

_OPTION_NAMES = {"json_out": "--json"}  # parameters whose option is not simply --name-with-dashes


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _unwrap(annotation: Any) -> tuple[Any, str | None]:
    """(type without None, help text) of a parameter annotated ``Annotated[T | None, Field(description=…)]``."""
    description = None
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
        description = next((e.description for e in extras if getattr(e, "description", None)), None)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = options[0] if len(options) == 1 else str
    return annotation, description


def parser_for(flow_: Flow[Any, Any], description: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser of a flow: one option per parameter (``paths`` is positional; booleans are flags)."""
    fn = flow_.fn
    hints = typing.get_type_hints(fn, include_extras=True)
    parser = _OneLineParser(
        prog=f"python flows/{Path(inspect.getfile(inspect.unwrap(fn))).name}",
        description=description or inspect.getdoc(sys.modules[fn.__module__]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, parameter in inspect.signature(fn).parameters.items():
        kind, text = _unwrap(hints[name])
        required = parameter.default is inspect.Parameter.empty
        default = None if required else parameter.default
        if typing.get_origin(kind) is list:
            if name != "paths":
                raise TypeError(f"{fn.__name__}: only 'paths' may be a list")
            parser.add_argument("paths", nargs="+" if required else "*", help=text, metavar="PATH")
            continue
        option = _OPTION_NAMES.get(name, "--" + name.replace("_", "-"))
        if kind is bool:
            parser.add_argument(option, dest=name, action="store_true", help=text)
        else:
            parser.add_argument(option, dest=name, type=kind if kind in (int, float) else str, required=required,
                                default=default, help=text, metavar=name.upper())  # fmt: skip
    return parser


def command(flow_: Flow[Any, Any], summarise: Callable[[Any], list[str]], argv: list[str] | None = None) -> int:
    """Run a flow as a command: exit 0 with its summary, or 2 with the one line of a user error."""
    arguments = vars(parser_for(flow_).parse_args(argv))
    state: Any = flow_(**arguments, return_state=True)
    try:
        result = state.result()
    except FailedRun as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in summarise(result):
        print(line)
    return 0
