"""The ``finwatch`` command line. Errors caused by input or settings print one line and exit with status 2.

Output never reads text as console markup or emoji codes (``[/x]``, ``:x:`` are printed as they are), and every value
from the data passes through :func:`finwatch.sanitize.terminal`: an escape sequence in an account id or a file name
is shown as ``\\x1b[31m``, never sent to the terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import polars as pl
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

from finwatch import __version__
from finwatch._paths import check_writable
from finwatch.exceptions import ConfigError, FinwatchError, user_message
from finwatch.sanitize import terminal


class _Console(Console):
    """A console without markup or emoji codes whose text has its control and bidirectional characters shown as
    visible escapes (line breaks kept): a value the commands forgot to pass through ``terminal`` is safe too."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, **options)

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str("\n".join(terminal(line) for line in text.split("\n")), **options)


console = _Console(stderr=False)
err = _Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def _flags_take_no_value(params: list[Any]) -> list[Any]:
    """Typer's help shows a ``<bool>`` value after every flag; a flag takes no value, so it shows none."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # only the help's type column reads an option's metavar
    return params


def _error(message: str, label: str = "error:") -> None:
    """One line on stderr: a red label, then the message as plain text (visible escapes)."""
    err.print(Text.assemble((label, "bold red"), " ", terminal(message)), highlight=False, soft_wrap=True)


def _row(*cells: Any) -> list[Text]:
    """Table cells from the data: plain text, never console markup, with visible escapes."""
    return [Text(terminal(cell)) for cell in cells]


def _usage_error(exc: typer.TyperException) -> int:
    """A command line the parser refuses, as one line on stderr; returns the exit status (2)."""
    message = " ".join(line.strip() for line in exc.format_message().splitlines() if line.strip())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    _error(message)
    return 2


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Like click's standalone mode, but an option error is one line (``error: …``), never a boxed panel."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            status = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.Abort:
            err.print("aborted", highlight=False)
            sys.exit(1)
        except typer.TyperException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help was shown already
                sys.exit(2)
            sys.exit(_usage_error(exc))
        sys.exit(status if isinstance(status, int) else 0)


class _App(typer.Typer):
    """A Typer whose groups and commands show flags without a value and report option errors in one line."""

    def __init__(self, **options: Any) -> None:
        super().__init__(cls=_Group, **options)

    def command(self, *args: Any, **options: Any) -> Callable[[CommandFunctionType], CommandFunctionType]:
        options["cls"] = options.get("cls") or _Command
        return super().command(*args, **options)


app = _App(
    name="finwatch",
    help="Bank and crypto transaction exports in, ranked and explained suspicious-activity leads out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _user_errors(fn: F) -> F:
    """Turn errors the user can fix into one line on stderr and exit status 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (FinwatchError, OSError, ValidationError) as exc:  # the same line the flows fail with
            message = user_message(exc)
            _error(message or str(exc))
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Configuration file (default: $FINWATCH_CONFIG, then ./finwatch.toml if present)."),
]
JurisdictionOption = Annotated[
    str | None,
    typer.Option("--jurisdiction", help="Preset of reporting law: us, ca, au or eu (features/jurisdictions)."),
]
ModelsOption = Annotated[
    Path | None, typer.Option("--models", help="Model registry folder (default: $FINWATCH_MODELS or ./models).")
]


def _config(file: Path | None, jurisdiction: str | None, **flags: Any) -> Any:
    """The run configuration: defaults < preset < file < environment < these flags (dotted keys; None = not given)."""
    from finwatch.config import load_config

    return load_config(file, {"jurisdiction": jurisdiction, **flags}).config


class _Progress:
    """Progress of a long command on stderr, called as ``step(done, total, what)`` (the library's ``Progress``).

    On a terminal: a transient bar. Elsewhere (a pipe, a log file): a timestamped line such as
    ``[02:41:07] train: account features as of 2026-01-20 00:00 (7/24)``, at most one every ``interval`` seconds,
    but always for the first step and the last (none with ``lines=False``). ``say`` prints a line whatever the
    interval (a stage's start or end). ``total`` 0 means not known.
    """

    def __init__(
        self,
        command: str,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        out: Console = err,
        lines: bool = True,
    ) -> None:
        self.command, self.interval, self.clock, self.out, self.lines = command, interval, clock, out, lines
        self._last: float | None = None  # when the last line was printed
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int, what: str) -> None:
        what = terminal(what)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total or None, description=what)
            return
        final = total > 0 and done >= total - 1  # the last step's announcement, or its completion
        if self._last is None or final or self.clock() - self._last >= self.interval:
            self.say(f"{what} ({done}/{total})" if total else what)

    def attach(self, bar: Any) -> None:
        """Show the steps on ``bar`` (a rich ``Progress``) instead of as lines."""
        self._bar, self._task = bar, bar.add_task("", total=None)

    def say(self, text: str) -> None:
        if self._bar is None and not self.lines:
            return
        self._last = self.clock()
        line = f"[{dt.datetime.now():%H:%M:%S}] {self.command}: {terminal(text)}"
        (self._bar.console if self._bar is not None else self.out).print(
            line, markup=False, highlight=False, soft_wrap=True
        )


@contextlib.contextmanager
def _progress(command: str, *, lines: bool = True) -> Iterator[_Progress]:
    """One progress mechanism for every long command: a bar on a terminal, timestamped lines elsewhere (none with
    ``lines=False``: a quick command whose stderr holds only its findings)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    step = _Progress(command, lines=lines)
    if not err.is_terminal:
        yield step
        return
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:  # fmt: skip
        step.attach(bar)
        yield step


class _IngestCommand(_Command):
    """``finwatch ingest``: the --format help names every format of ``finwatch.ingest.FORMATS``, imported only when
    the help is shown (the ingest package is slow to import)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from finwatch.ingest import FORMATS

        for param in self.params:
            if isinstance(param, TyperOption) and param.name == "format":
                param.help = f"auto (detect by content) or one of: {', '.join(FORMATS)}."
        super().format_help(ctx, formatter)


def _version(value: bool) -> None:
    if value:
        console.print(f"finwatch {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """finwatch: suspicious-activity leads from transaction exports."""


def _parse_mix(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        if not sep:
            raise ConfigError(f"--typology-mix: {part!r} is not NAME=WEIGHT")
        try:
            mix[name.strip()] = float(weight)
        except ValueError:
            raise ConfigError(f"--typology-mix: weight {weight!r} of {name!r} is not a number") from None
    return mix


def _world_config(**options: Any) -> Any:
    from finwatch.synth import WorldConfig, typology_mix

    mix, only_listed = _parse_mix(options.pop("typology_mix")), options.pop("only_listed")
    if mix is not None:
        try:
            options["typology_mix"] = typology_mix(mix, only_listed=only_listed)
        except ConfigError as exc:
            raise ConfigError(f"--typology-mix: {exc}") from None
    elif only_listed:
        raise ConfigError("--only-listed needs --typology-mix (the typologies to keep)")
    threshold = options.pop("reporting_threshold")
    try:
        options["reporting_threshold"] = Decimal(threshold)
    except InvalidOperation:
        raise ConfigError(f"--reporting-threshold: {threshold!r} is not a decimal number") from None
    exports = options.pop("exports")
    options["exports"] = tuple(e.strip() for e in exports.split(",") if e.strip())
    options = {k: v for k, v in options.items() if v is not None}
    return WorldConfig(**options)


@app.command()
@_user_errors
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the world into (replaced atomically).")],
    accounts: Annotated[int, typer.Option(help="Accounts of every kind.")] = 20_000,
    days: Annotated[int, typer.Option(help="Days simulated.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed; same seed and options give identical files.")] = 0,
    start: Annotated[str, typer.Option(help="First simulated day, YYYY-MM-DD (UTC).")] = "2026-01-05",
    prevalence: Annotated[float, typer.Option(help="Share of accounts in a suspicious pattern.")] = 0.1,
    typology_mix: Annotated[
        str | None, typer.Option(help="Relative weights, e.g. 'cycle=2,structuring=1' (others keep 1).")
    ] = None,
    only_listed: Annotated[
        bool, typer.Option("--only-listed", help="With --typology-mix: typologies not listed get weight 0.")
    ] = False,
    difficulty: Annotated[float, typer.Option(help="Camouflage, 0 (obvious) to 1 (well hidden).")] = 0.5,
    base_currency: Annotated[str, typer.Option(help="Currency of domestic accounts and amount_base.")] = "USD",
    reporting_threshold: Annotated[str, typer.Option(help="Cash reporting threshold in the base currency.")] = "10000",
    activity: Annotated[float, typer.Option(help="Multiplier on every normal transaction rate.")] = 1.0,
    exports: Annotated[
        str, typer.Option(help="Comma-separated export formats: amlworld, bank-csv, camt053, ethereum-etl.")
    ] = "amlworld,bank-csv,camt053,ethereum-etl",
) -> None:
    """Generate a seeded synthetic world: exports in real formats plus ground-truth labels."""
    from finwatch.synth import generate_world, save_world

    try:
        start_date = dt.date.fromisoformat(start)
    except ValueError:
        raise ConfigError(f"--start: {start!r} is not a date (YYYY-MM-DD)") from None
    config = _world_config(
        accounts=accounts,
        days=days,
        seed=seed,
        start=start_date,
        prevalence=prevalence,
        typology_mix=typology_mix,
        only_listed=only_listed,
        difficulty=difficulty,
        base_currency=base_currency,
        reporting_threshold=reporting_threshold,
        activity=activity,
        exports=exports,
    )
    began = time.perf_counter()
    with _progress("synth") as step:
        step(0, 2, "generating the world")
        world = generate_world(config)
        step(1, 2, f"writing {world.transactions.height:,} transactions")
        manifest = save_world(world, out)
    _print_world_summary(manifest, out, time.perf_counter() - began)


def _print_world_summary(manifest: dict[str, Any], out: Path, seconds: float) -> None:
    counts = manifest["counts"]
    table = Table(title=f"world written to {terminal(out)} in {seconds:.1f} s", show_header=True)
    table.add_column("typology")
    table.add_column("instances", justify="right")
    for name, n in counts["instances_per_typology"].items():
        table.add_row(*_row(name, n))
    console.print(table)
    console.print(
        f"{counts['accounts']:,} accounts ({counts['positive_accounts']:,} in a pattern), "
        f"{counts['transactions']:,} transactions ({counts['positive_transactions']:,} labelled), "
        f"{len(manifest['files'])} files; manifest: {terminal(out / 'world.json')}"
    )


def _print_notes(run: Any) -> None:
    """What the run wants the analyst to know (e.g. a rule that cannot fire for lack of data), one line each."""
    for note in run.summary.get("notes", []):
        err.print(f"note: {terminal(note)}", highlight=False, soft_wrap=True)


def _print_top_leads(run: Any, n: int = 10) -> None:
    """The first ``n`` leads of a run with their risk score, holder and first reason."""
    import json

    s = run.summary
    table = Table(title=f"top leads of run {terminal(run.run_id)} ({s['leads']} of {s['accounts_scored']:,} "
                        f"accounts, model {terminal(s['model'])})")  # fmt: skip
    for column in ("rank", "account", "holder", "risk", "typologies", "first reason"):
        table.add_column(column)
    for row in run.leads.head(n).iter_rows(named=True):
        reasons = json.loads(row["reasons"])
        cells = (str(row["rank"]), row["subject_id"], row.get("holder_name") or "", f"{row['risk_score']:.1f}",
                 ", ".join(row["typologies"]), reasons[0]["text"] if reasons else "")  # fmt: skip
        table.add_row(*_row(*cells))
    console.print(table)


@app.command()
@_user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for everything the demo produces.")] = Path("demo-output"),
    seed: Annotated[int, typer.Option(help="Seed of the demo world.")] = 7,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """The default synthetic world through ingest, training and scoring: leads in demo-output/."""

    from finwatch.demo import run_demo

    config = _config(config_file, jurisdiction)
    with _progress("demo") as step:
        result = run_demo(out, seed, step=step.say, config=config, progress=step)
    counts = result.world_manifest["counts"]
    assert isinstance(counts, dict)
    console.print(
        f"world: {counts['accounts']:,} accounts, {counts['transactions']:,} transactions "
        f"({counts['positive_accounts']:,} accounts in a pattern) → {terminal(out / 'world')}"
    )
    run = result.run
    _print_top_leads(run)
    _print_notes(run)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    console.print(f"leads: {terminal(out / 'leads.csv')}, {terminal(out / 'leads.parquet')} (run folder "
                  f"{terminal(run.folder)}); {times}")  # fmt: skip
    console.print(f"report: {terminal(out / 'report.html')}")


@app.command(cls=_IngestCommand)
@_user_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Export files (or an AMLSim folder) to ingest.")],
    store: Annotated[Path, typer.Option("--store", help="Store folder (created on first use).")],
    format: Annotated[str, typer.Option("--format", help="auto (detect by content) or a format name.")] = "auto",
    mapping: Annotated[
        str | None, typer.Option(help="bank-csv: mapping file (TOML) or the name of a shipped mapping.")
    ] = None,
    blocks: Annotated[
        Path | None, typer.Option(help="ethereum-etl token transfers: blocks file for timestamps.")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="Currency of formats that have none (AMLSim).")] = None,
    start: Annotated[str | None, typer.Option(help="Date of step 0 for formats with relative time (AMLSim).")] = None,
    account: Annotated[
        str | None, typer.Option(help="Own account id of formats that omit it (exchange ledger).")
    ] = None,
    fx: Annotated[
        Path | None,
        typer.Option(
            help="FX table CSV (date,currency,base,rate); default: the store's table (the shipped one for a new store)."
        ),
    ] = None,
    base_currency: Annotated[
        str | None, typer.Option(help="Base currency of the store (amount_base); default USD.")
    ] = None,
    pseudonym_key_file: Annotated[
        Path | None, typer.Option(help="Key for keyed-HMAC account pseudonyms (or $FINWATCH_PSEUDONYM_KEY).")
    ] = None,
    quarantine_key_file: Annotated[
        Path | None,
        typer.Option(help="Pseudonymised stores: key that encrypts quarantined records (or $FINWATCH_QUARANTINE_KEY)."),
    ] = None,
    skip_rejected: Annotated[
        bool, typer.Option("--skip-rejected", help="Commit the readable files even if some are rejected.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the report as JSON here (in a folder that exists).")
    ] = None,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Ingest bank and crypto exports into the store: validated, converted, quarantined, atomic."""

    from finwatch.ingest import FORMATS, ParseOptions, ingest_options, load_quarantine_key, write_report
    from finwatch.ingest import ingest as run_ingest
    from finwatch.ingest.pseudonym import load_key

    config = _config(config_file, jurisdiction, **{"ingest.format": None if format == "auto" else format,
                                                   "ingest.base_currency": base_currency, "ingest.fx": fx,
                                                   "ingest.skip_rejected": skip_rejected or None})  # fmt: skip
    if config.ingest.format != "auto" and config.ingest.format not in FORMATS:
        raise ConfigError(f"--format {config.ingest.format!r}: choose auto or one of {', '.join(FORMATS)}")
    try:
        start_date = dt.date.fromisoformat(start) if start else None
    except ValueError:
        raise ConfigError(f"--start: {start!r} is not a date (YYYY-MM-DD)") from None
    parse = ParseOptions(mapping=Path(mapping) if mapping else None, blocks=blocks, currency=currency,
                         start=start_date, account=account)  # fmt: skip
    options = ingest_options(config, parse, load_key(pseudonym_key_file), load_quarantine_key(quarantine_key_file))
    skip_rejected = config.ingest.skip_rejected
    if report is not None:
        check_writable(report, "--report")  # before anything is committed
    began = time.perf_counter()
    with _progress("ingest") as step:
        step(0, 0, f"ingesting {len(paths)} input(s)")
        result = run_ingest(list(paths), store, options, progress=step)
    table = Table(title=f"ingest into {terminal(store)} ({time.perf_counter() - began:.1f} s)")
    for column in ("file", "detected", "read", "accepted", "new", "quarantined", "status"):
        table.add_column(column, justify="right" if column in ("read", "accepted", "new", "quarantined") else "left")
    for f in result.files:
        table.add_row(*_row(Path(f.file).name, f.detected or f.format, f"{f.rows_read:,}", f"{f.accepted:,}",
                            f"{f.new:,}", f"{f.quarantined:,}", f.status))  # fmt: skip
    console.print(table)
    for f in result.files:
        for note in f.notes:
            console.print(Text(f"{terminal(Path(f.file).name)}: {terminal(note)}", style="dim"), soft_wrap=True)
    for f in result.rejected:
        _error(f.error, "rejected:")
    if result.committed:
        manifest = store / "manifests" / f"{result.batch}.json"
        console.print(f"batch {terminal(result.batch)} committed: manifest {terminal(manifest)}", highlight=False)
    elif result.rejected:
        err.print("nothing was written to the store (use --skip-rejected to commit the other files)")
    else:
        console.print("nothing new to ingest")
    if report is not None:
        write_report(report, result)
    if result.rejected and not (skip_rejected and result.committed):
        raise typer.Exit(2)


def _as_of(text: str) -> dt.datetime:
    from finwatch.config import parse_as_of

    return parse_as_of(text, "--as-of")


@app.command()
@_user_errors
def features(
    store: Annotated[Path, typer.Option("--store", help="Store folder written by finwatch ingest.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Point in time (ISO; a bare date means 00:00 UTC).")],
    level: Annotated[str, typer.Option(help="account or transaction.")] = "account",
    out: Annotated[Path | None, typer.Option(help="Output folder; default STORE/features/<as-of>.")] = None,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Compute point-in-time account features (DuckDB SQL under sql/) with cycle evidence and audits."""
    from finwatch.features import build_account_features, build_transaction_features, write_features
    from finwatch.store import Store

    if level not in ("account", "transaction"):
        raise ConfigError(f"--level {level!r}: choose account or transaction")
    moment = _as_of(as_of)
    config = _config(config_file, jurisdiction).features
    began = time.perf_counter()
    build = build_account_features if level == "account" else build_transaction_features
    with _progress("features") as step:
        step(0, 0, f"computing {level} features as of {moment.isoformat()}")
        result = build(Store(store), moment, config)
        target = out or store / "features" / f"{level}-{moment:%Y%m%dT%H%M%SZ}"
        write_features(result, target, config)
    table = result.accounts if result.transactions is None else result.transactions
    console.print(
        f"{table.height:,} {level}s × {table.width - 2} features as of {moment.isoformat()}, "
        f"{result.cycles.height:,} cycles, in {time.perf_counter() - began:.1f} s → {terminal(target)}"
    )


@app.command()
@_user_errors
def rules(
    store: Annotated[Path, typer.Option("--store", help="Store folder written by finwatch ingest.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Point in time (ISO; a bare date means 00:00 UTC).")],
    rules_dir: Annotated[Path | None, typer.Option("--rules", help="Folder of rule YAML files.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder; default STORE/rules/<as-of>.")] = None,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Evaluate the rule pack on the features as of a time; write rule hits with evidence transaction ids."""
    import json

    from finwatch._io import atomic_directory
    from finwatch.rules import run_rules
    from finwatch.store import Store

    moment = _as_of(as_of)
    config = _config(config_file, jurisdiction).features
    with _progress("rules") as step:
        step(0, 0, f"computing features as of {moment.isoformat()} and evaluating rules")
        run = run_rules(Store(store), moment, config, folder=rules_dir)
    pack, hits = run.pack, run.hits
    target = out or store / "rules" / moment.strftime("%Y%m%dT%H%M%SZ")
    with atomic_directory(target, marker="rules.json") as staging:
        hits.write_parquet(staging / "rule_hits.parquet")
        (staging / "rules.json").write_text(json.dumps(run.summary(), indent=2, sort_keys=True) + "\n")
    table = Table(title=f"rule hits as of {moment.isoformat()} (rules {terminal(pack.version)})")
    for column in ("rule", "typology", "severity", "accounts"):
        table.add_column(column)
    for rule in pack.rules:
        n = hits.filter(pl.col("rule_id") == rule.id).height if hits.height else 0
        table.add_row(*_row(rule.id, rule.typology, rule.severity, f"{n:,}"))
    console.print(table)
    console.print(
        f"{hits.height:,} hits on {hits['account_id'].n_unique() if hits.height else 0:,} accounts → {terminal(target)}"
    )
    for note in run.notes:
        err.print(f"note: {terminal(note)}", highlight=False, soft_wrap=True)


def _share(text: str | None, option: str) -> float | None:
    from finwatch.config import share

    return share(text, option)


def _fractions(text: str | None) -> tuple[float, float, float] | None:
    from finwatch.config import fractions

    return fractions(text)


def _write_json(path: Path, data: Any) -> None:
    import json

    from finwatch._io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


@app.command()
@_user_errors
def train(
    store: Annotated[Path, typer.Option("--store", help="Store folder with transactions and labels.")],
    name: Annotated[str, typer.Option("--name", help="Model name in the registry; a new version is added.")],
    level: Annotated[str | None, typer.Option(help="transaction (default) or account.")] = None,
    split: Annotated[str | None, typer.Option(help="temporal (whole days / as-of times in order).")] = None,
    fractions: Annotated[str | None, typer.Option(help="Train, validation, test shares (default 0.6,0.2,0.2).")] = None,
    step_hours: Annotated[int | None, typer.Option(help="Account level: hours between as-of times (72).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Use data up to this time (default: all).")] = None,
    feature_set: Annotated[str | None, typer.Option(help="Feature set (default: <level>_v1).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed; same data and seed give the same model bytes.")] = None,
    alert_budget: Annotated[
        str | None, typer.Option(help="Threshold alerting this share of validation rows (default: best F1).")
    ] = None,
    rounds: Annotated[int | None, typer.Option(help="Maximum boosting rounds (early stopping decides; 500).")] = None,
    models: ModelsOption = None,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Train a scorer on a store's labelled data (temporal split) and register it as a new version."""
    from finwatch.experiment import train_model
    from finwatch.registry import Registry
    from finwatch.store import Store

    if level is not None and level not in ("account", "transaction"):
        raise ConfigError(f"--level {level!r}: choose account or transaction")
    config = _config(
        config_file, jurisdiction, models=models, **{
            "train.level": level, "train.split": split, "train.fractions": _fractions(fractions),
            "train.step_hours": step_hours, "train.as_of": _as_of(as_of) if as_of else None,
            "train.feature_set": feature_set, "train.seed": seed,
            "train.alert_budget": _share(alert_budget, "--alert-budget"), "train.model.params.n_estimators": rounds,
        },
    )  # fmt: skip
    began = time.perf_counter()
    with _progress("train") as step:
        loaded = train_model(Store(store), name, config, Registry(config.models), progress=step)
    meta = loaded.metadata
    v = meta["metrics"]["validation"]["model"]
    data = meta["training_data"]
    console.print(
        f"trained {terminal(loaded.ref)} on {data['rows']:,} {config.train.level} rows ({data['positive']:,} "
        f"positive) in {time.perf_counter() - began:.1f} s: validation PR-AUC {v['pr_auc']:.4f}, F1 {v['f1']:.4f} at "
        f"threshold {v['threshold']:.4f} → {terminal(loaded.path)}",
        highlight=False,
    )
    console.print(str(loaded.version), highlight=False)


@app.command()
@_user_errors
def evaluate(
    store: Annotated[Path, typer.Option("--store", help="Store folder with transactions and labels.")],
    model: Annotated[str, typer.Option("--model", help="NAME, NAME@latest, NAME@champion or NAME@3.")],
    split: Annotated[str, typer.Option(help="train, validation, test or all.")] = "test",
    level: Annotated[str | None, typer.Option(help="Check the model scores this level.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Use data up to this time (default: all).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every metric as JSON here.")] = None,
    plots: Annotated[Path | None, typer.Option(help="Folder for PNG plots (PR curve, recall per typology).")] = None,
    models: ModelsOption = None,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Measure a registered model on a part of a store: PR-AUC, ROC-AUC, F1, budgets, typologies, calibration."""
    from finwatch.config import Level
    from finwatch.experiment import evaluate_model
    from finwatch.registry import Registry
    from finwatch.store import Store

    if level is not None and level not in ("account", "transaction"):
        raise ConfigError(f"--level {level!r}: choose account or transaction")
    config = _config(config_file, jurisdiction, models=models)
    with _progress("evaluate") as step:
        result = evaluate_model(Store(store), model, Registry(config.models), config.features, split=split,
                                level=Level(level) if level else None, as_of=_as_of(as_of) if as_of else None,
                                plots=plots, progress=step)  # fmt: skip
    table = Table(title=f"{terminal(result['model'])} on the {terminal(split)} part ({result['n_test']:,} rows, "
                        f"{result['n_test_positive']:,} positive)")  # fmt: skip
    for column in ("scorer", "PR-AUC", "ROC-AUC", "F1", "precision", "recall", "recall @1%", "Brier"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for scorer, m in result["scorers"].items():
        table.add_row(*_row(scorer, f"{m['pr_auc']:.4f}", _num(m["roc_auc"]), f"{m['f1']:.4f}",
                            f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['at_budget']['1%']['recall']:.4f}",
                            _num(m["brier"])))  # fmt: skip
    console.print(table)
    if json_out is not None:
        _write_json(json_out, result)
        console.print(f"metrics → {terminal(json_out)}")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@app.command()
@_user_errors
def score(
    store: Annotated[Path, typer.Option("--store", help="Store folder written by finwatch ingest.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Point in time (ISO; 00:00 UTC for a date; default: end of data).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/<as-of>).")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="An account-level model (default finwatch@champion).")
    ] = None,
    budget: Annotated[str | None, typer.Option(help="Share of scored accounts raised as leads (default 1%).")] = None,
    models: ModelsOption = None,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Score every account as of a time with the model and the rules; write ranked leads with reasons and evidence."""
    from finwatch.dataset import end_of_data
    from finwatch.leads import score_run
    from finwatch.registry import Registry
    from finwatch.runs import run_folder_for
    from finwatch.store import Store

    config = _config(config_file, jurisdiction, models=models,
                     **{"score.model": model, "score.budget": _share(budget, "--budget")})  # fmt: skip
    moment = _as_of(as_of) if as_of else end_of_data(Store(store))
    out = out or run_folder_for(moment)
    began = time.perf_counter()
    with _progress("score") as step:
        step(0, 0, f"scoring as of {moment.isoformat()} with {config.score.model}")
        run = score_run(Store(store), moment, Registry(config.models), out, config)
    s = run.summary
    _print_top_leads(run)
    _print_notes(run)
    changes = s["rules_since_training"]
    if changes["differs"]:
        note = (f"the rule pack ({changes['in_use']}) differs from the one {s['model']} was trained with "
                f"({changes['trained_with']}); new: {', '.join(changes['new']) or 'none'}, changed: "
                f"{', '.join(changes['changed']) or 'none'}, removed: {', '.join(changes['removed']) or 'none'} "
                "(new and changed rules weigh their severity prior until the model is retrained)")  # fmt: skip
        err.print(f"note: {terminal(note)}", highlight=False, soft_wrap=True)
    console.print(f"{s['leads']} leads ({s['new_leads']} new) in {time.perf_counter() - began:.1f} s → "
                  f"{terminal(out)}")  # fmt: skip


@app.command()
@_user_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by finwatch score.")],
    store: Annotated[Path | None, typer.Option("--store", help="The run's store, if it has moved.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML file to write (default RUN_DIR/report.html): a new .html file or an earlier finwatch report.",
        ),
    ] = None,
) -> None:
    """One self-contained HTML report of a run: overview, sortable lead table, a case page per lead.

    Writes only to a .html path that is free or holds a finwatch report (of any run); anything else is refused.
    """
    from finwatch.report import build_report, check_target
    from finwatch.runs import RunFolder

    check_target(out or run_dir / "report.html")  # before any work: one line if refused
    with _progress("report") as step:
        step(0, 0, f"writing the report of {run_dir}")
        target = build_report(RunFolder(run_dir), store, out)
    console.print(f"report → {terminal(target)}")


export_app = _App(help="Drafts in the formats FIUs receive.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("goaml")
@_user_errors
def export_goaml_command(
    run: Annotated[Path, typer.Option("--run", help="A run folder written by finwatch score.")],
    xsd: Annotated[
        Path | None, typer.Option("--xsd", help="The FIU's goAML schema (XSD; or \\[export] goaml_xsd).")
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="Codes of the FIU (see features/goaml/; or \\[export] goaml_mapping)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the drafts (default RUN/goaml).")] = None,
    store: Annotated[Path | None, typer.Option("--store", help="The run's store, if it has moved.")] = None,
    check_mapping: Annotated[
        bool,
        typer.Option(
            "--check-mapping",
            help="First check every code of the mapping against the schema's code lists; "
            "stop (exit 2) listing each unknown one.",
        ),
    ] = False,
    allow_invalid: Annotated[
        bool, typer.Option("--allow-invalid", help="Exit 0 even when some drafts are not valid against the schema.")
    ] = False,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """One goAML STR draft and one narrative per lead, validated against the FIU's XSD (what is missing is listed).

    Exits 2 when a draft is not valid (validation.json names every missing or invalid field), unless --allow-invalid.
    """
    from finwatch.export import GoamlSchema, export_goaml, load_mapping
    from finwatch.export import check_mapping as unknown_codes
    from finwatch.runs import RunFolder

    config = _config(config_file, jurisdiction, **{"export.goaml_xsd": xsd, "export.goaml_mapping": mapping})
    xsd, mapping = config.export.goaml_xsd, config.export.goaml_mapping
    if xsd is None or mapping is None:
        raise ConfigError("finwatch export goaml needs --xsd and --mapping (or [export] goaml_xsd and goaml_mapping)")
    with _progress("export goaml", lines=False) as step:
        step(0, 0, f"reading the schema {xsd.name}")
        schema = GoamlSchema(xsd)
        codes = load_mapping(mapping)
    if check_mapping:
        unknown = unknown_codes(codes, schema)
        for code in unknown:
            _error(code.line())
        if unknown:
            raise typer.Exit(2)
        console.print(f"{terminal(mapping.name)}: every code is in {terminal(xsd.name)}'s code lists")
    with _progress("export goaml", lines=False) as step:
        step(0, 0, "writing goAML drafts")
        problems = export_goaml(RunFolder(run), schema, codes, out, store=store)
    target = out or run / "goaml"
    invalid = {k: v for k, v in problems.items() if v}
    for lead, errors in sorted(invalid.items()):
        for error in errors[:3]:
            err.print(f"{terminal(lead)}: {terminal(error['path'])}: {terminal(error['reason'])}", highlight=False,
                      soft_wrap=True)  # fmt: skip
        if len(errors) > 3:
            err.print(f"{terminal(lead)}: … {len(errors) - 3} more", highlight=False, soft_wrap=True)
    altered = _altered_drafts(target / "validation.json")
    if altered:
        err.print(f"note: {altered} draft(s) show control or bidirectional characters of the data as visible escapes "
                  "(such as \\x1b): validation.json lists each field under altered", highlight=False,
                  soft_wrap=True)  # fmt: skip
    console.print(f"{len(problems)} drafts, {len(problems) - len(invalid)} valid against {terminal(xsd.name)} → "
                  f"{terminal(target)} (validation.json lists every missing or invalid field)")  # fmt: skip
    RunFolder(run).refresh_csv()  # leads.csv names each lead's draft
    if invalid and not allow_invalid:
        raise typer.Exit(2)


def _altered_drafts(validation: Path) -> int:
    """How many drafts of a goAML export wrote a value of the data with visible escapes."""
    import json

    try:
        leads = json.loads(validation.read_text(encoding="utf-8")).get("leads", {})
    except (OSError, ValueError):
        return 0
    return sum(1 for entry in leads.values() if entry.get("altered"))


@export_app.command("fincen-sar")
@_user_errors
def export_fincen_command(
    run: Annotated[Path, typer.Option("--run", help="A run folder written by finwatch score.")],
    filer: Annotated[Path, typer.Option("--filer", help="Who files (YAML): see features/fincen/filer.example.yaml.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for sar-batch.xml and validation.json (default RUN/fincen).")
    ] = None,
    store: Annotated[Path | None, typer.Option("--store", help="The run's store, if it has moved.")] = None,
    xsd: Annotated[
        Path | None, typer.Option("--xsd", help="FinCEN's SAR batch schema (default: the shipped version 1.2).")
    ] = None,
    allow_invalid: Annotated[
        bool, typer.Option("--allow-invalid", help="Exit 0 even when the batch is not valid against the schema.")
    ] = False,
) -> None:
    """One FinCEN SAR batch (EFilingBatchXML) for a run: an activity per lead, validated against FinCEN's XSD.

    Exits 2 when the batch is not valid (validation.json lists every schema error), unless --allow-invalid.
    """
    from finwatch.fincen import export_fincen_sar
    from finwatch.runs import RunFolder

    with _progress("export fincen-sar", lines=False) as step:
        step(0, 0, "writing the FinCEN SAR batch")
        result = export_fincen_sar(RunFolder(run), filer, out, store=store, xsd=xsd)
    for error in result.errors[:10]:
        err.print(f"{terminal(error['path'])}: {terminal(error['reason'])}", highlight=False, soft_wrap=True)
    if result.notes:
        err.print(f"note: {len(result.notes)} thing(s) to add before filing, e.g. {terminal(result.notes[0])} "
                  f"(validation.json lists them)", highlight=False, soft_wrap=True)  # fmt: skip
    state = "valid" if result.valid else f"invalid ({len(result.errors)} errors)"
    console.print(f"{result.activities} activities, {state} against {terminal(result.xsd.name)} → "
                  f"{terminal(result.path)}", highlight=False, soft_wrap=True)  # fmt: skip
    RunFolder(run).refresh_csv()  # leads.csv names the batch each lead is filed in
    if not result.valid and not allow_invalid:
        raise typer.Exit(2)


models_app = _App(
    help="The model registry: list, show, promote, compare, verify and seal versions.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("list")
@_user_errors
def models_list(models: ModelsOption = None) -> None:
    """Every registered model and version with its level, aliases and validation PR-AUC."""
    from finwatch.registry import Registry

    registry = Registry(_config(None, None, models=models).models)
    table = Table(title=f"models in {terminal(registry.root)}")
    for column in ("model", "version", "level", "aliases", "rows", "val PR-AUC", "val F1", "threshold"):
        table.add_column(column)
    for name in registry.names():
        aliases = registry.aliases(name)
        for version in registry.versions(name):
            meta = registry.metadata(f"{name}@{version}")
            v = meta["metrics"]["validation"]["model"]
            tags = ", ".join(sorted(a for a, n in aliases.items() if n == version))
            table.add_row(*_row(name, version, meta["level"], tags, f"{meta['training_data']['rows']:,}",
                                f"{v['pr_auc']:.4f}", f"{v['f1']:.4f}", f"{meta['threshold']:.4f}"))  # fmt: skip
    console.print(table)


@models_app.command("show")
@_user_errors
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@latest, NAME@champion or NAME@3.")],
    models: ModelsOption = None,
) -> None:
    """A version's model card, after checking its files."""
    from finwatch.registry import Registry

    loaded = Registry(_config(None, None, models=models).models).load(ref)
    card = (loaded.path / "MODEL_CARD.md").read_text(encoding="utf-8")
    console.print("\n".join(terminal(line) for line in card.split("\n")), highlight=False)


@models_app.command("promote")
@_user_errors
def models_promote(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to promote.")],
    alias: Annotated[str, typer.Argument(help="champion or challenger.")] = "champion",
    models: ModelsOption = None,
) -> None:
    """Point the champion (or challenger) alias at a version."""
    from finwatch.registry import Registry

    name, version, previous = Registry(_config(None, None, models=models).models).promote(ref, alias)
    was = f" (was {previous})" if previous is not None else ""
    console.print(f"{terminal(name)}@{terminal(alias)} → version {version}{terminal(was)}")


@models_app.command("compare")
@_user_errors
def models_compare(
    a: Annotated[str, typer.Argument(help="Model A (the baseline), e.g. NAME@champion.")],
    b: Annotated[str, typer.Argument(help="Model B (the candidate), e.g. NAME@latest.")],
    store: Annotated[Path, typer.Option("--store", help="Store with labels to compare on.")],
    split: Annotated[str, typer.Option(help="train, validation, test or all.")] = "test",
    budget: Annotated[str, typer.Option(help="Alert budget for precision and recall.")] = "1%",
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the comparison as JSON here.")] = None,
    models: ModelsOption = None,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """Two versions on the same rows with paired bootstrap intervals for the differences (B − A)."""
    from finwatch.experiment import compare_models
    from finwatch.registry import Registry
    from finwatch.store import Store

    config = _config(config_file, jurisdiction, models=models)
    share = _share(budget, "--budget")
    assert share is not None
    registry = Registry(config.models)
    same = registry.resolve(a)
    if registry.resolve(b) == same:
        console.print(f"{terminal(a)} and {terminal(b)} are both {terminal(same[0])}@{same[1]}: nothing to compare",
                      highlight=False)  # fmt: skip
        return
    with _progress("models compare") as step:
        result = compare_models(Store(store), a, b, registry, config.features, split=split, n_boot=n_boot, seed=seed,
                                budget=share, progress=step)  # fmt: skip
    table = Table(title=f"{terminal(result['a'])} (A) vs {terminal(result['b'])} (B) on {terminal(split)}: "
                        f"{result['n']:,} rows, "
                        f"{result['n_positive']:,} positive, {n_boot} resamples")  # fmt: skip
    for column in ("metric", "A", "B", "B − A", f"{int(result['level'] * 100)}% interval", "B better"):
        table.add_column(column)
    for metric, m in result["metrics"].items():
        interval = f"[{_num(m['diff_low'])}, {_num(m['diff_high'])}]"
        table.add_row(*_row(metric, _num(m["a"]), _num(m["b"]), _num(m["diff"]), interval,
                            "yes" if m["b_better"] else "no"))  # fmt: skip
    console.print(table)
    if json_out is not None:
        _write_json(json_out, result)
        console.print(f"comparison → {terminal(json_out)}")


KeyFileOption = Annotated[
    Path | None,
    typer.Option("--key-file", help="Signing key file (default: $FINWATCH_SIGNING_KEY_FILE or $FINWATCH_SIGNING_KEY)."),
]
VerifyJsonOption = Annotated[Path | None, typer.Option("--json", help="Also write every check as JSON here.")]


def _show_verification(result: Any, json_out: Path | None) -> None:
    """Print every check and the verdict; write them as JSON if asked; exit 1 when a check failed."""
    for line in result.lines():
        console.print(terminal(line), highlight=False, soft_wrap=True)
    if json_out is not None:
        _write_json(json_out, result.to_json())
        console.print(f"checks → {terminal(json_out)}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@models_app.command("verify")
@_user_errors
def models_verify(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@latest, NAME@champion or NAME@3.")],
    models: ModelsOption = None,
    key_file: KeyFileOption = None,
    json_out: VerifyJsonOption = None,
) -> None:
    """Check a version: its files against their checksums, its digest, its signature (with a key) and its scorer.

    Exit status 0 when every check passes, 1 when one fails, 2 when the version cannot be found."""
    from finwatch.digest import load_signing_key
    from finwatch.integrity import verify_model
    from finwatch.registry import Registry

    key = load_signing_key(key_file)
    registry = Registry(_config(None, None, models=models).models, key=key, key_from_env=False)
    _show_verification(verify_model(registry, ref, key), json_out)


@models_app.command("seal")
@_user_errors
def models_seal(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to seal.")],
    models: ModelsOption = None,
    key_file: KeyFileOption = None,
) -> None:
    """Record a version's digest (and, with a key, its signature) in its version.json, after its files pass their
    checks. For versions registered before digests or signing; a version that fails a check is never sealed."""
    from finwatch.digest import load_signing_key
    from finwatch.registry import Registry

    key = load_signing_key(key_file)
    registry = Registry(_config(None, None, models=models).models, key=key, key_from_env=False)
    loaded = registry.seal(ref)
    signed = "signed" if key is not None else "not signed (no key configured)"
    console.print(f"{terminal(loaded.ref)} sealed: digest {loaded.digest}, {signed}", highlight=False)


@app.command()
@_user_errors
def quarantine(
    store: Annotated[Path, typer.Option("--store", help="Store to read the quarantine of.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write every quarantined record as CSV here (a new file).")
    ] = None,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Decrypt the records a quarantine key encrypted (needs --out).")
    ] = False,
    quarantine_key_file: Annotated[
        Path | None, typer.Option(help="The quarantine key (or $FINWATCH_QUARANTINE_KEY); for --reveal.")
    ] = None,
) -> None:
    """The records ingest rejected: how many per file and reason, or all of them as CSV (--out).

    In a pseudonymised store a record's text is withheld (its sha256 kept) or, with a quarantine key, encrypted;
    --reveal decrypts it into the --out file, readable by its owner only, never into the store."""
    from finwatch.ingest import load_quarantine_key
    from finwatch.ingest.quarantine import reveal_quarantine
    from finwatch.sanitize import csv_cell
    from finwatch.store import Store

    the_store = Store(store)
    if not the_store.exists:
        raise ConfigError(f"--store {store}: no finwatch store there")
    if reveal and out is None:
        raise ConfigError("--reveal writes the decrypted records to a file: give --out FILE.csv")
    if out is not None:
        check_writable(out, "--out")
        if out.exists():
            raise ConfigError(f"--out {out}: exists; quarantined records are written to a new file only")
    if reveal:
        key = load_quarantine_key(quarantine_key_file)
        if key is None:
            raise ConfigError("--reveal needs the quarantine key: --quarantine-key-file or $FINWATCH_QUARANTINE_KEY")
        frame = reveal_quarantine(the_store, key)
    else:
        frame = the_store.scan("quarantine").collect()
    frame = frame.sort("file", "row")
    if out is not None:
        safe = frame.with_columns(
            pl.col(c).map_elements(csv_cell, return_dtype=pl.String) for c in ("file", "source_format", "raw", "reason")
        )
        _write_private(out, safe.write_csv().encode("utf-8"))
        what = "decrypted " if reveal else ""
        console.print(f"{frame.height:,} {what}quarantined record(s) → {terminal(out)}", highlight=False)
        return
    table = Table(title=f"quarantine of {terminal(store)}: {frame.height:,} record(s)")
    for column in ("file", "format", "records", "first row", "first reason"):
        table.add_column(column, justify="right" if column in ("records", "first row") else "left")
    for group in frame.partition_by("file", "source_format", maintain_order=True):
        first = group.row(0, named=True)
        table.add_row(*_row(first["file"], first["source_format"], f"{group.height:,}", str(first["row"]),
                            first["reason"]))  # fmt: skip
    console.print(table)


def _write_private(path: Path, data: bytes) -> None:
    """A new file readable and writable by its owner only, written whole or not at all."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if the file appeared meanwhile: never overwrites
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


runs_app = _App(help="Runs: verify a run folder against everything it depends on.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("verify")
@_user_errors
def runs_verify(
    run_dir: Annotated[Path, typer.Argument(help="The run folder (holds run.json and leads.parquet).")],
    store: Annotated[
        Path | None,
        typer.Option("--store", help="The store the run was scored on (default: the path run.json records)."),
    ] = None,
    models: ModelsOption = None,
    key_file: KeyFileOption = None,
    json_out: VerifyJsonOption = None,
) -> None:
    """Check a run: its run id, signature, lead files, the model version and the stored data it was scored with.

    Exit status 0 when every check passes, 1 when one fails, 2 when the folder is not a run."""
    from finwatch.digest import load_signing_key
    from finwatch.integrity import verify_run
    from finwatch.registry import Registry

    key = load_signing_key(key_file)
    registry = Registry(_config(None, None, models=models).models, key=key, key_from_env=False)
    _show_verification(verify_run(run_dir, registry, store, key), json_out)


config_app = _App(help="The run configuration: what each setting is and where its value came from.",
                          no_args_is_help=True)  # fmt: skip
app.add_typer(config_app, name="config")


@config_app.command("show")
@_user_errors
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: values, sources and the digest.")] = False,
    config_file: ConfigOption = None,
    jurisdiction: JurisdictionOption = None,
) -> None:
    """The effective configuration (defaults < preset < file < environment < flags) and each value's source."""
    import json

    from finwatch.config import load_config

    loaded = load_config(config_file, {"jurisdiction": jurisdiction})
    rows = loaded.show()
    if as_json:
        data = {"config": loaded.config.model_dump(mode="json"), "sources": {k: src for k, _v, src in rows},
                "sha256": loaded.config.digest()}  # fmt: skip
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    width = max(len(key) for key, _v, _s in rows)
    lines = [f"# effective configuration, sha256 {loaded.config.digest()}"]
    lines += [f"{key:<{width}} = {terminal(json.dumps(value, ensure_ascii=False))}  # {terminal(source)}"
              for key, value, source in rows]  # fmt: skip
    sys.stdout.write("\n".join(lines) + "\n")


def run() -> None:  # pragma: no cover - console entry point wrapper
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
