"""Security probe of finwatch on files it has never seen: ingest, score, report, exports and verify on hostile input.

    .venv/bin/python benchmarks/probe_hostile.py [--corpus DIR] [--keep DIR] [--sdists DIR] [--spawn]

The corpus is a folder with one sub-folder per nominal format (``mt940/``, ``ofx/``, ``camt053/``, ``bank-csv/``,
``amlsim/<folder>/``…; anything else counts as ``other``). Without ``--corpus`` it is built in the work folder from
the source distributions downloaded to ``--sdists`` (default ``/tmp/probe/sdists``, e.g. with
``.venv/bin/pip download --no-deps --no-binary PKG PKG -d /tmp/probe/sdists`` for mt-940, ofxparse, ofxtools, pycamt,
camt053-loader-mt940, mt940, bai2, …: their test files and the statements embedded in their tests) if that folder
exists, and from hostile variants of those files and of ``tests/fixtures`` (escape sequences, BiDi overrides, console
markup, emoji codes, formulas, NUL bytes, a 40 MB line, unterminated quotes, DOCTYPE/entities in every encoding, odd
file names). Files identical to one in ``tests/fixtures`` are left out.

Then, for each file, ``finwatch ingest`` into a store of its own (and again with ``--format`` forced where detection
did not pick the nominal format, and in one batch per format with every other file forced into it), special cases
(FIFOs, devices, missing folders, read-only and full file systems, ``decimal = ","``), and a pipeline on a small
synthetic world plus the hostile files: train, score, report, export goaml and fincen-sar, runs verify, half-finished
run folders. Every output is checked for the properties below; one line per finding, then a summary. Exit status 0
when nothing was found, 1 otherwise.

Kinds of finding: row-loss (rows read != accepted + quarantined, store counts, an independent count of the records
in the file), traceback, exit-code, markup (console markup / emoji codes interpreted), escape (control, C1, BiDi
characters or invalid bytes in stdout/stderr, report.html, leads.csv, the XML drafts), export (goAML / FinCEN
crashes or malformed output), formula / list (leads.csv cells), partial-run / leftover / store-created (half-finished
folders counted or left behind), os-error (a system error without the file name), hostile-xml (DOCTYPE / entities /
XInclude accepted or expanded), hang (a FIFO or device read), report-folder, decimal, repr (a Python object repr in a
message), html (markup from the data unescaped in HTML).

By default each finwatch command runs in a child forked from a process that imported finwatch once (the command
line is the same; this saves ~5 s of imports per run on a loaded 2-core machine); every run with a finding is then
repeated as a real ``finwatch`` process to confirm it. ``--spawn`` runs everything as real processes.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FINWATCH = REPO / ".venv" / "bin" / "finwatch"
FIXTURES = REPO / "tests" / "fixtures"
GOAML_XSD = FIXTURES / "goaml" / "goAMLSchema-5.0.1.xsd"
GOAML_MAPPING = REPO / "features" / "goaml" / "mapping.example.yaml"
FILER = REPO / "features" / "fincen" / "filer.example.yaml"
FORMATS = (
    "amlsim",
    "amlworld",
    "bank-csv",
    "bitcoin-etl",
    "camt053",
    "customers-csv",
    "ethereum-etl",
    "exchange-ledger",
    "finwatch-tables",
    "mt940",
    "ofx",
)
TIME_BUDGET = 560.0  # seconds: later phases are cut short past this

# --- hostile tokens --------------------------------------------------------------------------------------------------
ESC_SGR = "\x1b[31mRED\x1b[0m"
OSC = "\x1b]0;pwned\x07"
C1_CSI = "\x9b31m"
RLO = "\u202e"
MARKUP = "[bold]B[/bold][/x]"
EMOJI = ":x::smiley:"
FORMULA = "=cmd|' /C calc'!A0"
HTML = "<img src=x onerror=alert(1)>"
LSEP = "\u2028"
SENTINEL = "XXE-SENTINEL-7f3a9c"

# what must never reach a person's screen or file raw: C0 (not tab / LF), DEL, C1, BiDi controls, line separators,
# lone surrogates (= bytes that are not UTF-8 after decoding with surrogateescape), U+FFFE/F
UNSAFE_OUT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
UNSAFE_XML = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
    "\ufffe\uffff]"
)
REPR = re.compile(
    r"<[A-Za-z_][\w.]*(?: [\w.]+)? object at 0x[0-9a-fA-F]+>|<(?:function|bound method|built-in "
    r"function|module) [^>]*>|\b(?:Posix|Windows|Pure\w*)Path\("
)
OS_PHRASES = (
    "No such file or directory",
    "Permission denied",
    "Read-only file system",
    "Not a directory",
    "Is a directory",
    "File name too long",
    "No space left on device",
    "Too many levels of symbolic links",
    "Operation not permitted",
    "Errno",
    "Device or resource busy",
    "Disk quota exceeded",
)
EMOJI_OUT = ("\u274c", "\U0001f603")  # what :x: and :smiley: become when emoji codes are interpreted
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
LIST_COLUMNS = ("typologies", "rules_fired", "evidence_txn_ids", "counterparties", "channels")


def vis(text: object, limit: int = 160) -> str:
    """Our own output: every unsafe character as a visible escape, cut to ``limit`` characters."""
    s = str(text)
    s = re.sub(
        "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]",
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
        s,
    )
    return s if len(s) <= limit else s[:limit] + f"…(+{len(s) - limit})"


def shq(arg: object) -> str:
    """One shell word, readable: plain quoting, or bash's $'…' with escapes for what cannot be shown."""
    s = os.fsdecode(arg) if isinstance(arg, bytes) else str(arg)
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", s):
        return s
    if not re.search(r"[^\x20-\x7e]", s):
        return "'" + s.replace("'", "'\\''") + "'"
    out = []
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # a byte that is not UTF-8 (surrogateescape)
            out.append(f"\\x{o - 0xDC00:02x}")
        elif o < 0x20 or 0x7F <= o <= 0x9F:
            out.append(f"\\x{o:02x}")
        elif o > 0x7E:
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        elif ch in "\\'":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


# --- findings ---------------------------------------------------------------------------------------------------------
@dataclass
class Finding:
    kind: str
    where: str
    what: str
    repro: str = ""
    run: Result | None = None
    confirmed: str = ""


@dataclass
class Result:
    label: str
    argv: list[str]
    rc: int | None
    out: str
    err: str
    seconds: float
    timed_out: bool
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 180

    @property
    def text(self) -> str:
        return self.out + "\n" + self.err

    def command(self) -> str:
        env = " ".join(f"{k}={shq(v)}" for k, v in sorted(self.env.items()))
        return (
            f"cd {shq(self.cwd)} && "
            + (env + " " if env else "")
            + " ".join([str(FINWATCH)] + [shq(a) for a in self.argv])
        )


def output_problems(res: Result, allowed: set[int], tokens: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(kind, what) for each property a finwatch run's output breaks."""
    found: list[tuple[str, str]] = []
    if res.timed_out:
        return [("hang", f"{res.label}: no answer within the time limit ({res.seconds:.0f} s)")]
    text = res.text
    if "Traceback (most recent call last)" in text:
        tail = [ln for ln in res.err.strip().splitlines() if ln.strip()][-1:] or ["?"]
        found.append(("traceback", f"{res.label}: traceback (exit {res.rc}): {tail[0]}"))
    elif res.rc not in allowed:
        last = [ln for ln in (res.err or res.out).strip().splitlines() if ln.strip()][-1:] or [""]
        found.append(("exit-code", f"{res.label}: exit status {res.rc}, expected {sorted(allowed)}: {last[0]}"))
    bad: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for stream_name, stream in (("stdout", res.out), ("stderr", res.err)):
        for m in UNSAFE_OUT.finditer(stream):
            o = ord(m.group())
            key = f"raw byte 0x{o - 0xDC00:02X}" if 0xDC80 <= o <= 0xDCFF else f"U+{o:04X}"
            bad[f"{key} in {stream_name}"] += 1
            if key not in examples:
                a = stream.rfind("\n", 0, m.start()) + 1
                b = stream.find("\n", m.end())
                examples[key] = stream[a : b if b >= 0 else None]
    if bad:
        ex = "; ".join(f"{k}: {vis(v, 120)}" for k, v in examples.items())
        found.append(("escape", f"{res.label}: {', '.join(f'{k} x{n}' for k, n in sorted(bad.items()))} -- {ex}"))
    if any(e in text for e in EMOJI_OUT):
        found.append(("markup", f"{res.label}: an emoji code from the data was rendered as an emoji"))
    if "MarkupError" in text or "doesn't match any open tag" in text:
        line = next((ln for ln in text.splitlines() if "tag" in ln or "Markup" in ln), "")
        found.append(("markup", f"{res.label}: data parsed as console markup: {vis(line)}"))
    flat = re.sub(r"\s+", "", text)
    for tok in tokens:
        if tok not in text and re.sub(r"\s+", "", tok) not in flat:
            found.append(
                (
                    "markup",
                    f"{res.label}: {vis(tok)} from the input does not appear as it is in the output "
                    f"(interpreted as markup / emoji?)",
                )
            )
    m = REPR.search(text)
    if m:
        line = text[text.rfind("\n", 0, m.start()) + 1 : text.find("\n", m.end())]
        found.append(("repr", f"{res.label}: Python object repr in a message: {vis(line, 300)}"))
    names = {Path(a).name for a in res.argv if "/" in a and Path(a).name}
    for line in text.splitlines():
        if any(p in line for p in OS_PHRASES) and "/" not in line and not any(n in line for n in names):
            found.append(("os-error", f"{res.label}: system error without a file name: {vis(line, 300)}"))
            break
    return found


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x07\x1b]*(?:\x07|\x1b\\\\)")
DATA_SEQUENCES = ("\x1b[31mred", "\x1b[31mR", "\x1b]0;pwned", "\u202e", "\u009b", "\udc9b", "\u2028", "\u2066")


def tty_problems(res: Result, allowed: set[int], tokens: tuple[str, ...]) -> list[tuple[str, str]]:
    """On a terminal Rich writes escape sequences of its own: look for the data's sequences, not for ESC."""
    found: list[tuple[str, str]] = []
    if res.timed_out:
        return [("hang", f"{res.label}: no answer within the time limit ({res.seconds:.0f} s)")]
    text = res.out
    if "Traceback (most recent call last)" in text:
        found.append(("traceback", f"{res.label}: traceback (exit {res.rc})"))
    elif res.rc not in allowed:
        found.append(("exit-code", f"{res.label}: exit status {res.rc}, expected {sorted(allowed)}"))
    for seq in DATA_SEQUENCES:
        if seq in text:
            i = text.index(seq)
            found.append(
                (
                    "escape",
                    f"{res.label}: the data's {vis(seq)} reached the terminal: …{vis(text[max(0, i - 60) : i + 40])}…",
                )
            )
    plain = ANSI.sub("", text)
    bare = re.sub(r"[\s│┃|]+", "", plain)
    for tok in tokens:
        if tok not in plain and re.sub(r"\s+", "", tok) not in bare:
            found.append(("markup", f"{res.label}: {vis(tok)} from the input is not shown as it is on the terminal"))
    if any(e in text for e in EMOJI_OUT):
        found.append(("markup", f"{res.label}: an emoji code from the data was rendered as an emoji on the terminal"))
    return found


class Probe:
    def __init__(self, work: Path, spawn: bool) -> None:
        self.work = work
        self.spawn = spawn
        self.findings: list[Finding] = []
        self.runs = 0
        self.files_tried: set[str] = set()
        self.per_format: Counter[str] = Counter()
        self.began = time.monotonic()
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.cwd = work / "cwd"
        self.cwd.mkdir(exist_ok=True)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("FINWATCH_", "FORCE_COLOR", "NO_COLOR", "PREFECT_"))
        }
        self.env.update(
            {
                "COLUMNS": "400",
                "LINES": "100",
                "FINWATCH_MODELS": str(work / "models"),
                "TERM": "xterm-256color",
                "PYTHONHASHSEED": "0",
            }
        )
        self.notes: list[str] = []
        self._app = None
        if not spawn:
            self._preload()

    # --- running finwatch -----------------------------------------------------------------------------------------
    def _preload(self) -> None:
        os.environ.clear()
        os.environ.update(self.env)
        import importlib
        import pkgutil

        from finwatch.cli import app

        for name in (
            "polars",
            "pyarrow",
            "pyarrow.parquet",
            "duckdb",
            "lxml.etree",
            "finwatch.ingest",
            "mt940",
            "ofxtools",
            "ofxtools.Parser",
            "finwatch.report",
            "finwatch.export.goaml",
            "finwatch.fincen",
            "finwatch.scoring",
            "finwatch.integrity",
            "finwatch.model",
            "xgboost",
            "xmlschema",
        ):
            with contextlib.suppress(Exception):  # what is not there is imported by the child when needed
                importlib.import_module(name)
        with contextlib.suppress(Exception):
            import finwatch.ingest.adapters as adapters

            for mod in pkgutil.iter_modules(adapters.__path__):
                importlib.import_module(f"finwatch.ingest.adapters.{mod.name}")
        self._app = app

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def run(
        self,
        argv: list[str],
        label: str,
        timeout: float = 180,
        cwd: Path | None = None,
        spawn: bool | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        self.runs += 1
        cwd = cwd or self.cwd
        n = self.runs
        out_path, err_path = self.logs / f"{n:04d}.out", self.logs / f"{n:04d}.err"
        began = time.monotonic()
        timed_out = False
        use_spawn = self.spawn if spawn is None else spawn
        if env and not use_spawn:
            use_spawn = True  # another environment: a real process
        if use_spawn:
            with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
                proc = subprocess.Popen(
                    [str(FINWATCH), *argv],
                    cwd=cwd,
                    env={**self.env, **(env or {})},
                    stdin=subprocess.DEVNULL,
                    stdout=fo,
                    stderr=fe,
                    start_new_session=True,
                )
                try:
                    rc: int | None = proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    rc, timed_out = None, True
        else:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child: finwatch's command line, as the console script runs it
                code = 120
                try:
                    os.setpgid(0, 0)
                    os.chdir(cwd)
                    fi = os.open(os.devnull, os.O_RDONLY)
                    fo = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    fe = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.dup2(fi, 0)
                    os.dup2(fo, 1)
                    os.dup2(fe, 2)
                    sys.argv = [str(FINWATCH), *argv]
                    try:
                        self._app()
                        code = 0
                    except SystemExit as exc:
                        if exc.code is None:
                            code = 0
                        elif isinstance(exc.code, int):
                            code = exc.code
                        else:
                            sys.stderr.write(f"{exc.code}\n")
                            code = 1
                    except BaseException:
                        traceback.print_exc()
                        code = 1
                    try:
                        atexit._run_exitfuncs()
                        sys.stdout.flush()
                        sys.stderr.flush()
                    except BaseException:  # noqa: S110 - the child is ending anyway
                        pass
                finally:
                    os._exit(code & 0xFF)
            deadline = began + timeout
            rc = None
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    rc = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    timed_out = True
                    break
                time.sleep(0.02)
        res = Result(
            label,
            list(argv),
            rc,
            out_path.read_bytes().decode("utf-8", "surrogateescape"),
            err_path.read_bytes().decode("utf-8", "surrogateescape"),
            time.monotonic() - began,
            timed_out,
            cwd,
            env or {},
            timeout,
        )
        with open(self.work / "runs.tsv", "a", encoding="utf-8") as log:
            log.write(f"{n}\t{res.rc}\t{res.seconds:.1f}\t{vis(label, 200)}\n")
        return res

    def run_tty(self, argv: list[str], label: str, timeout: float = 60) -> Result:
        """A real finwatch process on a terminal (a pty, 250 columns): what a person at a console sees."""
        import fcntl
        import pty
        import select
        import struct
        import termios

        self.runs += 1
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        env = {k: v for k, v in self.env.items() if k not in ("COLUMNS", "LINES")}
        began = time.monotonic()
        proc = subprocess.Popen(
            [str(FINWATCH), *argv],
            cwd=self.cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        chunks = []
        timed_out = False
        while True:
            if time.monotonic() - began > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                timed_out = True
                break
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
        rc = proc.wait()
        os.close(master)
        (self.logs / f"{self.runs:04d}.tty").write_bytes(b"".join(chunks))
        with open(self.work / "runs.tsv", "a", encoding="utf-8") as log:
            log.write(f"{self.runs}\t{rc}\t{time.monotonic() - began:.1f}\t{vis(label, 200)} (tty)\n")
        return Result(
            label + " (on a terminal)",
            list(argv),
            None if timed_out else rc,
            b"".join(chunks).decode("utf-8", "surrogateescape"),
            "",
            time.monotonic() - began,
            timed_out,
            self.cwd,
            {},
            timeout,
        )

    # --- findings ---------------------------------------------------------------------------------------------------
    def find(self, kind: str, where: str, what: str, run: Result | None = None, repro: str = "") -> None:
        f = Finding(kind, where, what, repro or (run.command() if run else ""), run)
        self.findings.append(f)
        print(f"FINDING [{kind}] {vis(where, 120)}: {vis(what, 400)}", flush=True)

    def check_output(
        self, res: Result, allowed: set[int], where: str, tokens: tuple[str, ...] = (), hostile_input: bool = True
    ) -> None:
        """Properties every finwatch output must have, whatever the input."""
        for kind, what in output_problems(res, allowed, tokens):
            self.find(kind, where, what, res)

    # --- confirmation -------------------------------------------------------------------------------------------------
    def confirm(self) -> None:
        """Repeat each run with a finding as a real finwatch process (fresh store and output paths where they were
        fresh), and say whether the same kind of finding shows again."""
        if self.spawn:
            for f in self.findings:
                f.confirmed = "real process"
            return
        done: dict[int, str] = {}
        for f in self.findings:
            res = f.run
            if res is None or f.kind in (
                "row-loss",
                "formula",
                "list",
                "export",
                "partial-run",
                "leftover",
                "html",
                "hostile-xml",
                "decimal",
                "store-created",
                "report-folder",
            ):
                f.confirmed = "checked on files"
                continue
            key = id(res)
            if key not in done:
                if len(done) >= 25 or self.elapsed() > TIME_BUDGET + 30:
                    done[key] = "not repeated (time)"
                else:
                    argv = [self._fresh(a) for a in res.argv]
                    again = self.run(argv, res.label + " (real process)", spawn=True, cwd=res.cwd, timeout=res.timeout)
                    kinds = {k for k, _w in output_problems(again, {res.rc if res.rc is not None else 0})}
                    same = again.rc == res.rc if f.kind == "exit-code" else f.kind in kinds
                    done[key] = (
                        "confirmed by a real process" if same else f"NOT reproduced by a real process (exit {again.rc})"
                    )
            f.confirmed = done[key]

    def _fresh(self, arg: str) -> str:
        """A store / output path of the work folder → a fresh one beside it, so that a repeat starts from nothing."""
        w = str(self.work)
        if arg.startswith(w) and any(part in arg for part in ("/stores/", "/reports/", "/xout/")):
            return arg + ".again"
        return arg


# --- corpus -----------------------------------------------------------------------------------------------------------
def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fixture_hashes() -> set[str]:
    return {sha(p.read_bytes()) for p in FIXTURES.rglob("*") if p.is_file()}


def _strings_in_python(text: str) -> list[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and len(node.value) >= 200:
            out.append(node.value if isinstance(node.value, str) else node.value.decode("latin-1"))
    return out


def _classify(name: str, data: bytes) -> str | None:
    low = name.lower()
    head = data[:4096]
    if low.endswith(
        (
            ".xsd",
            ".json",
            ".py",
            ".pyc",
            ".md",
            ".rst",
            ".cfg",
            ".toml",
            ".ini",
            ".yml",
            ".yaml",
            ".in",
            ".lock",
            ".gif",
            ".png",
            ".tape",
        )
    ):
        return None
    if low.endswith((".ofx", ".qfx")):
        return "ofx"
    if low.endswith((".sta", ".mt940", ".940")):
        return "mt940"
    if low.endswith((".bai2", ".bai")):
        return "other"
    if low.endswith(".xml") and b"camt.05" in head:
        return "camt053"
    if low.endswith(".txt") and b":20:" in data and b":61:" in data:
        return "mt940"
    if low.endswith(".csv"):
        first = head.split(b"\n", 1)[0].lower()
        if first.startswith(b"hash,nonce"):
            return "ethereum-etl"
        if b"txid" in first and b"refid" in first:
            return "exchange-ledger"
        return "other"
    return None


def build_sdist_corpus(sdists: Path, dest: Path, known: set[str]) -> Counter[str]:
    """The test files of the downloaded source distributions (and the statements embedded in their tests)."""
    counts: Counter[str] = Counter()
    seen = set(known)
    members: list[tuple[str, str, bytes]] = []  # (package, path inside, data)
    for archive in sorted(sdists.iterdir()):
        try:
            if archive.name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar")):
                with tarfile.open(archive) as tar:
                    for m in sorted(tar.getmembers(), key=lambda m: m.name):
                        if m.isfile() and m.size < 20_000_000:
                            fh = tar.extractfile(m)
                            if fh is not None:
                                members.append((archive.name, m.name, fh.read()))
            elif archive.name.endswith(".zip"):
                with zipfile.ZipFile(archive) as zf:
                    for name in sorted(zf.namelist()):
                        if not name.endswith("/"):
                            members.append((archive.name, name, zf.read(name)))
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
            print(f"note: {archive.name}: unreadable ({exc})")
    per_source: Counter[str] = Counter()
    for package, name, data in members:
        pkg = re.sub(r"(\.tar\.gz|\.tgz|\.zip|\.tar\.bz2)$", "", package)
        candidates: list[tuple[str, str, bytes]] = []
        if name.endswith(".py") and "/test" in name:
            for i, text in enumerate(_strings_in_python(data.decode("utf-8", "replace"))):
                up = text.upper()
                if "<OFX>" in up:
                    fmt, ext = "ofx", ".ofx"
                elif "<Document" in text and "camt.05" in text:
                    fmt, ext = "camt053", ".xml"
                elif ":61:" in text and ":20:" in text:
                    fmt, ext = "mt940", ".sta"
                else:
                    continue
                if per_source[name] >= 4:  # near-duplicates of one test module: a few are enough
                    continue
                per_source[name] += 1
                stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.rsplit("/", 1)[-1][:-3])
                candidates.append((fmt, f"{pkg}__{stem}_s{i}{ext}", text.strip().encode("utf-8")))
        else:
            if "/xsd/" in name or "/schemas/" in name:
                continue
            fmt = _classify(name, data)
            if fmt is None:
                continue
            inside = name.split("/", 1)[-1]
            candidates.append((fmt, f"{pkg}__{re.sub(r'[^A-Za-z0-9_.-]+', '_', inside)}", data))
        for fmt, fname, blob in candidates:
            h = sha(blob)
            if h in seen or not blob.strip():
                continue
            seen.add(h)
            (dest / fmt).mkdir(parents=True, exist_ok=True)
            (dest / fmt / fname).write_bytes(blob)
            counts[f"{pkg}:{fmt}"] += 1
    return counts


def _camt_base(corpus: Path) -> bytes:
    """A small camt.053 with the elements the hostile values go into (a downloaded one if there is one)."""
    for p in sorted((corpus / "camt053").glob("*.xml")) if (corpus / "camt053").is_dir() else []:
        data = p.read_bytes()
        if (
            all(t in data for t in (b"<TxDtls>", b"<Ustrd>", b"<EndToEndId>", b"<Nm>", b"<Stmt>"))
            and b"{{" not in data
            and len(data) < 40_000
        ):
            return data
    return (FIXTURES / "camt053" / "camt_053_ver2_mixed_extended_account_statement.xml").read_bytes()


def _put_in(body: str, value: str) -> str:
    """``value`` at the end of the first text field the camt.053 adapter reads (remittance information first)."""
    for tag in ("</Ustrd>", "</AddtlNtryInf>", "</AddtlTxInf>", "</EndToEndId>", "</AcctSvcrRef>"):
        if tag in body:
            return body.replace(tag, value + tag, 1)
    raise SystemExit("probe: the camt.053 base document has no text field to put a hostile value in")


def _mt940_base(corpus: Path) -> bytes:
    p = corpus / "mt940"
    for f in sorted(p.glob("*")) if p.is_dir() else []:
        if "seed-one-statement" in f.name:
            return f.read_bytes()
    return (FIXTURES / "mt940" / "knab.sta").read_bytes()


def _xml_body(data: bytes) -> str:
    text = data.decode("utf-8")
    return re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", text)


def _inject_camt(text: str) -> str:
    """Hostile values in a camt.053's ids, names and remittance text (as XML-legal characters or references)."""
    text = re.sub(
        r"<EndToEndId>[^<]*</EndToEndId>",
        "<EndToEndId>E2E&#x202E;gpj.exe=cmd|' /C calc'!A0</EndToEndId>",
        text,
        count=1,
    )
    text = re.sub(
        r"<Ustrd>[^<]*</Ustrd>",
        "<Ustrd>&lt;img src=x onerror=alert(1)&gt; [bold]B[/bold][/x] :x: &#x9b;31m&#x2028;</Ustrd>",
        text,
        count=1,
    )
    text = re.sub(r"(<Stmt>\s*<Id>)[^<]*(</Id>)", r"\1STMT&#x202E;[/x]:smiley:\2", text, count=1)
    text = re.sub(r"(<Nm>)[^<]*(</Nm>)", "\\1@SUM(1+1)&#x9b;&#x61c;Mallory\\2", text, count=2)
    return text


def make_hostile(corpus: Path, world: Path | None, work: Path) -> Counter[str]:
    """Hostile variants of sdist files and fixtures, written into the corpus folders (names start with ``hx-``)."""
    made: Counter[str] = Counter()

    def put(fmt: str, name: str | bytes, data: bytes) -> Path:
        folder = corpus / fmt
        folder.mkdir(parents=True, exist_ok=True)
        path = Path(os.fsdecode(os.fsencode(folder) + b"/" + (name if isinstance(name, bytes) else name.encode())))
        path.write_bytes(data)
        made[fmt] += 1
        return path

    secret = work / "secret.txt"
    secret.write_text(SENTINEL + "\n")
    (work / "secret.dtd").write_text(f'<!ENTITY xxe "{SENTINEL}">\n')
    uri = secret.as_uri()

    # ---- MT940 ----
    mt = _mt940_base(corpus).decode("latin-1").replace("\r\n", "\n")

    def mt_sub(text: str, tag: str, value: str) -> str:
        return re.sub(rf"^{re.escape(tag)}.*$", lambda m: tag + value, text, count=1, flags=re.M)

    hostile = mt_sub(mt, ":20:", "STMT" + RLO + C1_CSI + MARKUP)
    hostile = mt_sub(hostile, ":25:", FORMULA)
    hostile = re.sub(r"^(:61:[^\n]*?)//[^\n]*$", lambda m: m.group(1) + "//" + EMOJI, hostile, count=1, flags=re.M)
    hostile = mt_sub(hostile, ":86:", HTML + " " + LSEP + " [bold]x[/bold]")
    put("mt940", "hx-ids.sta", hostile.encode("utf-8"))
    put("mt940", "hx-esc.sta", mt_sub(mt, ":86:", ESC_SGR + OSC).encode("utf-8"))
    put("mt940", "hx-acct-esc.sta", mt_sub(mt, ":25:", "NL" + ESC_SGR).encode("utf-8"))
    put("mt940", "hx-nul.sta", mt_sub(mt, ":86:", "pay\x00ment").encode("latin-1"))
    put("mt940", "hx-cr.sta", mt_sub(mt, ":86:", "pay\rment").encode("latin-1"))
    put("mt940", "hx-c1-latin1.sta", mt_sub(mt, ":86:", "pay\x9b31mment").encode("latin-1"))
    many = "\n".join([mt.strip()] * 700) + "\n"  # > 64 KiB: detection does not see the end
    put("mt940", "hx-nul-late.sta", (many + mt_sub(mt, ":86:", "late\x00nul")).encode("latin-1"))
    put("mt940", "hx-longline.sta", mt_sub(mt, ":86:", "L" * 40_000_000).encode("latin-1"))
    put("mt940", "hx-utf16.sta", mt.encode("utf-16"))

    # ---- camt.053 ----
    body = _xml_body(_camt_base(corpus))
    decl = '<?xml version="1.0" encoding="{}"?>\n'
    injected = _inject_camt(body)
    if injected.count("&#x202E;") < 2 or "onerror" not in injected:
        raise SystemExit("probe: the hostile values did not go into the camt.053 base document")
    put("camt053", "hx-ids.xml", (decl.format("UTF-8") + injected).encode("utf-8"))
    raw_c1 = re.sub(r"(<Nm>)[^<]*(</Nm>)", "\\1Raw\u009bC1\u202eName\\2", body, count=1)
    put("camt053", "hx-rawc1.xml", (decl.format("UTF-8") + raw_c1).encode("utf-8"))
    put("camt053", "hx-esc-charref.xml", (decl.format("UTF-8") + _put_in(body, "&#x1b;[31m")).encode("utf-8"))
    put("camt053", "hx-esc-raw.xml", (decl.format("UTF-8") + _put_in(body, "\x1b[31m")).encode("utf-8"))
    put(
        "camt053",
        "hx-xml11-esc.xml",
        ('<?xml version="1.1" encoding="UTF-8"?>\n' + _put_in(body, "&#x1b;[31m&#x9b;")).encode("utf-8"),
    )
    root = re.match(r"\s*<([A-Za-z_:][\w:.-]*)", body).group(1)  # type: ignore[union-attr]
    with_ent = _put_in(body, "&xxe;")
    dtd = f'<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "{uri}">]>\n'
    doc = dtd + with_ent
    encodings = {
        "utf8": (decl.format("UTF-8") + doc).encode("utf-8"),
        "utf8-bom": b"\xef\xbb\xbf" + (decl.format("UTF-8") + doc).encode("utf-8"),
        "utf8-nodecl": doc.encode("utf-8"),
        "utf16le-bom": b"\xff\xfe" + (decl.format("UTF-16") + doc).encode("utf-16-le"),
        "utf16be-bom": b"\xfe\xff" + (decl.format("UTF-16") + doc).encode("utf-16-be"),
        "utf16le-nobom": (decl.format("UTF-16LE") + doc).encode("utf-16-le"),
        "utf16be-nobom": (decl.format("UTF-16BE") + doc).encode("utf-16-be"),
        "utf32le-bom": b"\xff\xfe\x00\x00" + (decl.format("UTF-32") + doc).encode("utf-32-le"),
        "utf32be-nobom": (decl.format("UTF-32BE") + doc).encode("utf-32-be"),
        "latin1": (decl.format("ISO-8859-1") + doc).encode("latin-1", "replace"),
        "ebcdic": (decl.format("IBM037") + doc).encode("cp037", "replace"),
        "utf7": (decl.format("UTF-7").encode() + doc.encode("utf-7").replace(b"<", b"+ADw-")),
        "ucs2-nodecl-bom": b"\xff\xfe" + doc.encode("utf-16-le"),
        "after-64k-comment": (decl.format("UTF-8") + "<!--" + "c" * 70_000 + "-->\n" + doc).encode("utf-8"),
        "after-pi": (decl.format("UTF-8") + "<?probe x?><!-- c -->\n" + doc).encode("utf-8"),
        "tab-doctype": (decl.format("UTF-8") + doc.replace("<!DOCTYPE ", "<!DOCTYPE\t\n")).encode("utf-8"),
        "param-entity": (
            decl.format("UTF-8") + f'<!DOCTYPE {root} [<!ENTITY % p SYSTEM "{uri}"> %p;]>\n' + body
        ).encode("utf-8"),
        "external-dtd": (
            decl.format("UTF-8") + f'<!DOCTYPE {root} SYSTEM "{(work / "secret.dtd").as_uri()}">\n' + with_ent
        ).encode("utf-8"),
        "billion-laughs": (
            decl.format("UTF-8")
            + f'<!DOCTYPE {root} [<!ENTITY a "lol">'
            + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
            + "]>\n"
            + _put_in(body, "&j;")
        ).encode("utf-8"),
    }
    for name, data in encodings.items():
        put("camt053", f"hx-doctype-{name}.xml", data)
    xi = _put_in(body, f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{uri}" parse="text"/>')
    put("camt053", "hx-xinclude.xml", (decl.format("UTF-8") + xi).encode("utf-8"))
    deep = _put_in(body, "<x>" * 5000 + "d" + "</x>" * 5000)
    put("camt053", "hx-deep.xml", (decl.format("UTF-8") + deep).encode("utf-8"))
    put("camt053", "hx-longtext.xml", (decl.format("UTF-8") + _put_in(body, "L" * 40_000_000)).encode("utf-8"))
    pad = "<!--" + "p" * 70_000 + "-->"
    put("camt053", "hx-nul-late.xml", (decl.format("UTF-8") + pad + _put_in(body, "\x00")).encode("utf-8"))
    put("camt053", "hx-nul-charref.xml", (decl.format("UTF-8") + _put_in(body, "&#0;")).encode("utf-8"))
    put(
        "camt053",
        "hx-jinja-ids.xml",
        (decl.format("UTF-8") + body.replace("</EndToEndId>", "{{7*7}}</EndToEndId>", 1)).encode("utf-8"),
    )

    # ---- OFX ----
    sgml_src = corpus / "ofx"
    sgml = None
    for f in sorted(sgml_src.glob("*.ofx")) if sgml_src.is_dir() else []:
        d = f.read_bytes()
        if d.lstrip().startswith(b"OFXHEADER:100") and b"<STMTTRN>" in d and len(d) < 30_000:
            sgml = d.decode("latin-1")
            break
    if sgml is None:
        sgml = (FIXTURES / "ofx" / "checking-1.02.ofx").read_bytes().decode("latin-1")

    def ofx_sub(text: str, tag: str, value: str, count: int = 1) -> str:
        return re.sub(rf"(<{tag}>)([^<\r\n]*)", lambda m: m.group(1) + value, text, count=count)

    h = ofx_sub(sgml, "FITID", "F" + RLO + "gpj.exe")
    h = ofx_sub(h, "NAME", FORMULA.replace("<", ""))
    h = ofx_sub(h, "MEMO", "[bold]B[/bold][/x] :x: " + C1_CSI)
    h = ofx_sub(h, "ACCTID", "@ACCT" + LSEP)
    put("ofx", "hx-ids.ofx", h.encode("utf-8"))
    put("ofx", "hx-esc.ofx", ofx_sub(sgml, "NAME", ESC_SGR + OSC).encode("latin-1"))
    put("ofx", "hx-nul.ofx", ofx_sub(sgml, "MEMO", "a\x00b").encode("latin-1"))
    put("ofx", "hx-nul-late.ofx", (sgml.rstrip() + "\n" + " " * 70_000 + "\x00\n").encode("latin-1"))
    put(
        "ofx",
        "hx-cp1252-undefined.ofx",
        ofx_sub(sgml.replace("CHARSET:NONE", "CHARSET:1252"), "NAME", "bad\x81\x8d\x9dbyte").encode("latin-1"),
    )
    put("ofx", "hx-longline.ofx", ofx_sub(sgml, "MEMO", "M" * 40_000_000).encode("latin-1"))
    ofx2 = (FIXTURES / "ofx" / "creditcard-2.11.qfx").read_bytes().decode("utf-8")
    ofx2_body = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", ofx2)
    ofx2_ent = re.sub(r"(<MEMO>)([^<]*)", lambda m: m.group(1) + "&xxe;", ofx2_body, count=1)
    if "&xxe;" not in ofx2_ent:
        ofx2_ent = re.sub(r"(<NAME>)([^<]*)", lambda m: m.group(1) + "&xxe;", ofx2_body, count=1)
    # the DOCTYPE goes after the OFX processing instruction (before the root element)
    ofx_dt = re.sub(
        r"(\?>\s*)(<OFX>)",
        lambda m: m.group(1) + f'<!DOCTYPE OFX [<!ENTITY xxe SYSTEM "{uri}">]>\n' + m.group(2),
        ofx2_ent,
        count=1,
    )
    put("ofx", "hx2-doctype-utf8.qfx", (decl.format("UTF-8") + ofx_dt).encode("utf-8"))
    put("ofx", "hx2-doctype-utf16.qfx", b"\xff\xfe" + (decl.format("UTF-16") + ofx_dt).encode("utf-16-le"))
    put("ofx", "hx2-doctype-utf16be-nobom.qfx", (decl.format("UTF-16BE") + ofx_dt).encode("utf-16-be"))
    put(
        "ofx",
        "hx2-doctype-after-64k.qfx",
        (decl.format("UTF-8") + "<!--" + "c" * 70_000 + "-->" + ofx_dt).encode("utf-8"),
    )
    h2 = re.sub(r"(<FITID>)([^<]*)", lambda m: m.group(1) + "F&#x202E;&#x9b;" + m.group(2), ofx2_body, count=1)
    h2 = re.sub(r"(<NAME>)([^<]*)", lambda m: m.group(1) + "=HYPERLINK(&quot;http://x&quot;) [/x] :x:", h2, count=1)
    put("ofx", "hx2-ids.qfx", (decl.format("UTF-8") + h2).encode("utf-8"))

    # ---- bank-csv (the synthetic bank's export) ----
    if world is not None:
        lines = (world / "bank-csv" / "transactions.csv").read_text(encoding="utf-8").split("\n")
        header, rows = lines[0], [ln for ln in lines[1:2001] if ln]
        cols = header.split(";")
        ia, iname, iref, idesc, iamt = (
            cols.index(c) for c in ("Account", "Counterparty Name", "Reference", "Description", "Amount")
        )
        toks = [RLO + "gpj.exe", C1_CSI, MARKUP, EMOJI, FORMULA, "+1-1", "@SUM(A1)", "-2+3", HTML, LSEP, "\tTAB"]
        out = []
        for i, ln in enumerate(rows[:300]):
            f = ln.split(";")
            t = toks[i % len(toks)]
            if i % 4 == 0:
                f[ia] = f[ia] + t if not t.startswith(("=", "+", "@", "-", "\t")) else t + f[ia]
            if i % 4 == 1:
                f[iname] = t + f[iname]
            if i % 4 == 2:
                f[iref] = t + f[iref]
            if i % 4 == 3:
                f[idesc] = t + f[idesc]
            f[iref] = f[iref] + f"-H{i}"
            out.append(";".join(f))
        put("bank-csv", "hx-ids.csv", ("\n".join([header, *out]) + "\n").encode("utf-8"))
        esc = [header] + [ln.replace("CARD PURCHASE", "CARD" + ESC_SGR + OSC) for ln in rows[:50]]
        put("bank-csv", "hx-esc.csv", ("\n".join(esc) + "\n").encode("utf-8"))
        long_rows = [header, *rows[:20]]
        f = long_rows[5].split(";")
        f[idesc] = "X" * 40_000_000
        long_rows[5] = ";".join(f)
        put("bank-csv", "hx-longline.csv", ("\n".join(long_rows) + "\n").encode("utf-8"))
        unterminated = [header, *rows[:40]]
        f = unterminated[3].split(";")
        f[idesc] = '"open quote never closed'
        unterminated[3] = ";".join(f)
        put("bank-csv", "hx-unterminated.csv", ("\n".join(unterminated) + "\n").encode("utf-8"))
        unterminated_last = [header, *rows[:40]]
        f = unterminated_last[-1].split(";")
        f[idesc] = '"open at the last line'
        unterminated_last[-1] = ";".join(f)
        put("bank-csv", "hx-unterminated-last.csv", ("\n".join(unterminated_last)).encode("utf-8"))
        nul = [header, *rows[:1500]]
        nul[1200] = nul[1200].replace(";", ";\x00", 1)
        put("bank-csv", "hx-nul-late.csv", ("\n".join(nul) + "\n").encode("utf-8"))
        nul_first = [header, *rows[:30]]
        nul_first[4] = nul_first[4] + "\x00"
        put("bank-csv", "hx-nul-early.csv", ("\n".join(nul_first) + "\n").encode("utf-8"))
        cr = [header, *rows[:30]]
        cr[6] = cr[6].replace("CARD PURCHASE", "CARD\rPURCHASE")
        put("bank-csv", "hx-bare-cr.csv", ("\r\n".join(cr) + "\r\n").encode("utf-8"))
        dot = [header]
        for i, ln in enumerate(rows[:10]):
            f = ln.split(";")
            f[iamt] = ["12.50", "-12.50", "1.234,56", "1,234.56", "1.23", "12,50", "1e3", "0x10", "١٢", "12,5"][i]
            f[iref] = f[iref] + f"-D{i}"
            dot.append(";".join(f))
        put("bank-csv", "hx-amount-forms.csv", ("\n".join(dot) + "\n").encode("utf-8"))
        bad_utf8 = [header, *rows[:30]]
        put(
            "bank-csv",
            "hx-bad-utf8.csv",
            ("\n".join(bad_utf8[:10]) + "\n").encode("utf-8")
            + b"abc\xff\xfe;x\n"
            + ("\n".join(bad_utf8[10:]) + "\n").encode("utf-8"),
        )
        put("bank-csv", "hx-utf16.csv", ("\n".join([header, *rows[:30]]) + "\n").encode("utf-16"))
        quoted_nl = [header, *rows[:30]]
        f = quoted_nl[2].split(";")
        f[idesc] = '"line one\nline two ""quoted"" =1+1"'
        quoted_nl[2] = ";".join(f)
        put("bank-csv", "hx-quoted-newline.csv", ("\n".join(quoted_nl) + "\n").encode("utf-8"))
        # the customer extract: hostile names
        cl = (world / "customers" / "customers.csv").read_text(encoding="utf-8").split("\n")
        ch, crow = cl[0], [ln for ln in cl[1:] if ln][:60]
        ccols = ch.split(";")
        iacc, inm, igiv = ccols.index("Account"), ccols.index("Name"), ccols.index("Given Name")
        cout = []
        for i, ln in enumerate(crow):
            f = ln.split(";")
            t = toks[i % len(toks)]
            f[inm] = t + f[inm]
            if i % 3 == 0:
                f[iacc] = "HXC" + str(i) + t
                f[igiv] = t
            cout.append(";".join(f))
        cout.append(crow[0].replace(";", ";" + ESC_SGR, 1))
        put("customers-csv", "hx-names.csv", ("\n".join([ch, *cout]) + "\n").encode("utf-8"))

    # ---- amlworld, ethereum-etl, exchange ledger, bitcoin-etl, labels, AMLSim ----
    aw = (FIXTURES / "amlworld" / "HI-Small_Trans_sample.csv").read_text(encoding="utf-8").split("\n")
    ah, arows = aw[0], [ln for ln in aw[1:401] if ln]
    out = []
    toks = [RLO + "x", C1_CSI, MARKUP, EMOJI, FORMULA.replace(",", ";"), "@A", HTML, LSEP, ESC_SGR, "\x00"]
    for i, ln in enumerate(arows):
        f = ln.split(",")
        f[2] = (toks[i % len(toks)] + f[2]) if i % 3 == 0 else f[2]
        out.append(",".join(f))
    put("amlworld", "hx-ids.csv", ("\n".join([ah, *out]) + "\n").encode("utf-8"))
    long_aw = [ah, *arows[:10]]
    long_aw[3] = long_aw[3] + "9" * 40_000_000
    put("amlworld", "hx-longline.csv", ("\n".join(long_aw) + "\n").encode("utf-8"))

    et = (FIXTURES / "ethereum_etl" / "transactions.csv").read_text(encoding="utf-8").split("\n")
    eh, erows = et[0], [ln for ln in et[1:] if ln][:200]
    out = []
    etoks = [RLO, C1_CSI, "[/x]", ":x:", "=1+1", HTML, LSEP]
    for i, ln in enumerate(erows):
        f = ln.split(",")
        if i % 5 == 0:
            f[5] = f[5] + etoks[i % len(etoks)]
        if i % 7 == 0:
            f[0] = etoks[i % len(etoks)] + f[0]
        out.append(",".join(f))
    put("ethereum-etl", "hx-ids.csv", ("\n".join([eh, *out]) + "\n").encode("utf-8"))
    jl = [
        json.loads(ln)
        for ln in (FIXTURES / "ethereum_etl" / "expected_transactions.json").read_text().splitlines()
        if ln.strip()
    ][:60]
    jlines = []
    for i, rec in enumerate(jl):
        r = dict(rec)
        if i % 6 == 0:
            r["from_address"] = str(r["from_address"]) + "\ud800"
        elif i % 6 == 1:
            r["to_address"] = "\u001b[31m" + str(r.get("to_address"))
        elif i % 6 == 2:
            r["hash"] = str(r["hash"]) + "\u202e\u009b"
        elif i % 6 == 3:
            r["value"] = "1e400"
        elif i % 6 == 4:
            r["from_address"] = {"nested": [1, 2]}
        jlines.append(json.dumps(r, ensure_ascii=True))
    jlines.insert(10, "{not json")
    jlines.insert(20, '"a string"')
    jlines.insert(30, "[1,2,3]")
    put("ethereum-etl", "hx-lines.json", ("\n".join(jlines) + "\n").encode("utf-8"))

    kr = (FIXTURES / "exchange_ledger" / "kraken_ledgers_addresses.csv").read_text(encoding="utf-8").split("\n")
    kh, krows = kr[0], [ln for ln in kr[1:] if ln]
    out = []
    ktoks = [RLO + "gpj.exe", C1_CSI, MARKUP, EMOJI, "=cmd|' /C calc'!A0", HTML, LSEP]
    for i, ln in enumerate(krows):
        t = ktoks[i % len(ktoks)].replace('"', '""')
        out.append(
            re.sub(r'^"([^"]*)"', lambda m, t=t: f'"{m.group(1)}{t}"', ln, count=1)
            if i % 2 == 0
            else ln.replace('"Jonas Weber"', f'"{t}Jonas"')
        )
    put("exchange-ledger", "hx-ids.csv", ("\n".join([kh, *out]) + "\n").encode("utf-8"))

    bt = (FIXTURES / "bitcoin_etl" / "expected_transactions.json").read_text(encoding="utf-8")
    bt_lines = [ln for ln in bt.splitlines() if ln.strip()]
    bl = []
    for i, ln in enumerate(bt_lines):
        r = json.loads(ln)
        if i % 2 == 0:
            r["hash"] = str(r["hash"]) + "\u202e\ud800"
            for o in r.get("outputs", []):
                o["addresses"] = [a + "\u009b31m" for a in (o.get("addresses") or [])] or ["=1+1"]
        bl.append(json.dumps(r))
    put("bitcoin-etl", "hx-ids.json", ("\n".join(bl) + "\n").encode("utf-8"))

    labels = ["subject_kind,subject_id,label,typology"]
    for i, t in enumerate([RLO + "x", C1_CSI, "[/x]", ":x:", "=1+1", HTML, LSEP, ESC_SGR, "\x00", "@A"]):
        labels.append(f"account,ACC{i}{t.replace(',', ';')},true,cycle")
    labels.append('transaction,"T1,T2",yes,"=HYPERLINK(""http://x"")"')
    put("finwatch-tables", "hx-labels.csv", ("\n".join(labels) + "\n").encode("utf-8"))

    src = FIXTURES / "amlsim" / "20K_fanin200"
    folder = corpus / "amlsim" / "hx-amlsim"
    folder.mkdir(parents=True, exist_ok=True)
    nodes = (src / "nodes.csv").read_text().split("\n")
    txs = (src / "transactions.csv").read_text().split("\n")
    (folder / "nodes.csv").write_text("\n".join(nodes[:301]) + "\n" + f"=1+1{RLO},0,1.0,-1\n")
    tx_out = (
        [txs[0]]
        + [ln for ln in txs[1:300] if ln]
        + [f"=1+1{RLO},0,5.00,2", f"0,{C1_CSI},6.00,3", "1,[/x]:x:,7.00,4", f"2,{ESC_SGR},8.00,5"]
    )
    (folder / "transactions.csv").write_text("\n".join(tx_out) + "\n")
    made["amlsim"] += 1

    put("other", "hx-markup-start.txt", b"[bold]B[/x] :x: :smiley: [red]r[/red] not a known export\n")
    put("other", "hx-markup-start.csv", b"[bold]a[/x],:x:,b\n1,2,3\n")

    # ---- odd file names (a valid MT940 statement under each) ----
    base = _mt940_base(corpus)
    names: list[bytes] = [
        b"fn-esc-\x1b[31mred\x1b[0m.sta",
        b"fn-osc-\x1b]0;pwned\x07.sta",
        "fn-rlo-\u202eats.exe.sta".encode(),
        "fn-c1-\u009b31m.sta".encode(),
        b"fn-raw-\x9b31m.sta",
        b"fn-markup-[bold]b[red]x[link=http:x]y.sta",
        b"fn-emoji-:x::smiley:.sta",
        b"=cmd|' -C calc'!A0.sta",
        b"fn-nl-\nsecond.sta",
        b"fn-cr-\rover.sta",
        b"fn-tab-\tx.sta",
        b"fn-html-<img src=x onerror=alert(1)>.sta",
        "fn-lsep-\u2028x.sta".encode(),
    ]
    for nm in names:
        put("mt940", nm, base)
    return made


# --- oracles ----------------------------------------------------------------------------------------------------------
def expected_records(path: Path, fmt: str) -> int | None:
    """An independent count of the records a file holds (None where it cannot be told simply)."""
    try:
        if path.is_dir() or not path.is_file():
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if fmt == "mt940":
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return None
        return sum(1 for ln in data.replace(b"\r\n", b"\n").split(b"\n") if ln.startswith(b":61:"))
    if fmt == "ofx":
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:200]:
            return None
        return len(re.findall(rb"<STMTTRN>", data, re.I))
    if fmt == "camt053":
        from lxml import etree

        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
            root = etree.fromstring(data, parser)
        except Exception:
            return None
        n = 0
        for el in root.iter():
            if isinstance(el.tag, str) and etree.QName(el).localname == "Ntry":
                tx = sum(1 for d in el.iter() if isinstance(d.tag, str) and etree.QName(d).localname == "TxDtls")
                n += max(1, tx)
        return n
    if fmt in ("bank-csv", "customers-csv", "amlworld", "exchange-ledger") or (
        fmt == "ethereum-etl" and path.suffix == ".csv"
    ):
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return None
        lines = data.split(b"\n")
        if any(ln.count(b'"') % 2 for ln in lines):
            if b"unterminated" in path.name.encode():
                return sum(1 for ln in lines[1:] if ln.strip(b"\r"))
            return None
        return sum(1 for ln in lines[1:] if ln.strip(b"\r"))
    if fmt == "ethereum-etl" and path.suffix == ".json":
        return sum(1 for ln in data.split(b"\n") if ln.strip())
    if fmt == "finwatch-tables" and path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return None


def store_counts(store: Path) -> dict[str, int] | None:
    """Rows per table of a store as its manifests list them, each checked against the Parquet file's row count."""
    manifests = sorted((store / "manifests").glob("*.json")) if (store / "manifests").is_dir() else []
    if not manifests:
        return None
    import pyarrow.parquet as pq

    counts: Counter[str] = Counter()
    for m in manifests:
        info = json.loads(m.read_text())
        for f in info.get("files", []):
            n = pq.ParquetFile(store / f["path"]).metadata.num_rows
            counts[f["table"]] += n
            if n != f.get("rows"):
                counts["__mismatch__"] += 1
    return dict(counts)


def leftovers(folder: Path) -> list[str]:
    found = []
    if not folder.exists():
        return found
    for p in folder.rglob("*"):
        n = p.name
        if (
            ".partial-" in n
            or ".tmp-" in n
            or ".old-" in n
            or n.startswith(".staging-")
            or (n == ".staging" and p.is_dir() and any(p.iterdir()))
        ):
            found.append(str(p.relative_to(folder)))
    return sorted(found)


def strings_in_store(store: Path) -> str:
    """Every string value in a store's Parquet files, joined (to look for what an entity would have expanded to)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for p in store.rglob("*.parquet"):
        try:
            t = pq.read_table(p)
        except Exception:  # noqa: S112 - an unreadable file holds nothing to look for
            continue
        for col in t.columns:
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                parts.extend(v for v in col.to_pylist() if v)
    return "\n".join(parts)


# --- the probe's phases -----------------------------------------------------------------------------------------------
def corpus_entries(corpus: Path) -> list[tuple[str, Path]]:
    entries = []
    for sub in sorted(corpus.iterdir(), key=lambda p: p.name):
        if not sub.is_dir():
            continue
        fmt = sub.name if sub.name in FORMATS else "other"
        for p in sorted(sub.iterdir(), key=lambda p: os.fsencode(p.name)):
            if p.name.startswith("."):
                continue
            if (fmt == "amlsim" and p.is_dir()) or p.is_file():
                entries.append((fmt, p))
    return entries


def extra_args(fmt: str, path: Path) -> list[str]:
    if fmt == "exchange-ledger":
        return ["--account", "PROBE-EXCHANGE"]
    if fmt == "ethereum-etl" and "token" in path.name:
        return ["--blocks", str(FIXTURES / "ethereum_etl" / "expected_blocks.json")]
    return []


def hostile_tokens_in(name: str) -> tuple[str, ...]:
    return tuple(t for t in ("[bold]", "[red]", "[link=http:x]", "[/x]", "[/bold]", ":x:", ":smiley:") if t in name)


def check_ingest(
    probe: Probe,
    res: Result,
    where: str,
    report: Path,
    store: Path,
    files: list[tuple[str, Path]],
    forced: str | None,
    store_existed: bool,
) -> dict | None:
    tokens: tuple[str, ...] = ()
    for _fmt, p in files:
        tokens += hostile_tokens_in(os.fsdecode(p.name))
    rep = None
    if report.is_file() and not res.timed_out:
        try:
            rep = json.loads(report.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            probe.find("other", where, f"--report JSON unreadable: {exc}", res)
    if rep is not None:  # what the JSON report says of the files, the console must show as it is
        shown = " ".join(str(e.get(k) or "") for e in rep.get("files", []) for k in ("error", "detected"))
        tokens += hostile_tokens_in(shown)
    probe.check_output(res, {0, 2}, where, tokens=tuple(sorted(set(tokens))) if len(files) <= 1 else ())
    if res.timed_out:
        return None
    if rep is not None:
        pass
    elif res.rc == 0:
        probe.find("report-folder", where, "exit 0 but no --report JSON written", res)
    if rep is not None:
        by_name = {}
        for entry in rep.get("files", []):
            read, acc, q = entry.get("rows_read"), entry.get("accepted"), entry.get("quarantined")
            fname = entry.get("file", "?")
            by_name[fname] = entry
            if None not in (read, acc, q) and read != acc + q:
                probe.find(
                    "row-loss",
                    where,
                    f"{vis(Path(fname).name)}: rows read {read} != accepted {acc} + "
                    f"quarantined {q} (status {entry.get('status')})",
                    res,
                )
        if rep.get("committed"):
            counts = store_counts(store)
            if counts is not None and not store_existed:
                q_total = sum(
                    e.get("quarantined", 0) or 0 for e in rep.get("files", []) if e.get("status") != "rejected"
                )
                if counts.get("quarantine", 0) != q_total:
                    probe.find(
                        "row-loss",
                        where,
                        f"store holds {counts.get('quarantine', 0)} quarantined rows, the report says {q_total}",
                        res,
                    )
                new_total = sum(
                    e.get("new", 0) or 0
                    for e in rep.get("files", [])
                    if e.get("status") != "rejected" and e.get("format") not in ("finwatch-tables", "customers-csv")
                )
                txn_formats = all(
                    e.get("format") not in ("finwatch-tables", "customers-csv", "amlworld", "amlsim")
                    for e in rep.get("files", [])
                )
                if txn_formats and counts.get("transactions", 0) != new_total:
                    probe.find(
                        "row-loss",
                        where,
                        f"store holds {counts.get('transactions', 0)} transactions, the report says {new_total} new",
                        res,
                    )
                if counts.get("__mismatch__"):
                    probe.find("row-loss", where, "a manifest's row count differs from its Parquet file", res)
        # independent count of the records in each file
        for fmt, p in files:
            entry = by_name.get(str(p)) or next(
                (e for e in rep.get("files", []) if Path(e.get("file", "")).name == p.name), None
            )
            if entry is None:
                if rep.get("committed") or res.rc == 0:
                    probe.find("row-loss", where, f"{vis(p.name)}: not in the --report JSON at all", res)
                continue
            status = entry.get("status")
            eff = forced or fmt
            if status in ("rejected", "skipped") or entry.get("format") != eff:
                continue
            exp = expected_records(p, eff)
            if exp is not None and entry.get("rows_read") != exp:
                probe.find(
                    "row-loss",
                    where,
                    f"{vis(p.name)}: the file holds {exp} records ({eff}), finwatch read "
                    f"{entry.get('rows_read')} (accepted {entry.get('accepted')}, "
                    f"quarantined {entry.get('quarantined')})",
                    res,
                )
    committed = bool(rep and rep.get("committed"))
    if not committed and not store_existed and store.exists():
        probe.find(
            "store-created",
            where,
            f"nothing committed (exit {res.rc}) but the new store folder exists: {sorted(os.listdir(store))[:6]}",
            res,
        )
    left = leftovers(store)
    if left:
        probe.find("leftover", where, f"left in the store after the run: {left[:5]}", res)
    return rep


def phase_per_file(probe: Probe, entries: list[tuple[str, Path]]) -> dict[str, dict]:
    results: dict[str, dict] = {}
    stores = probe.work / "stores"
    reports = probe.work / "reports"
    stores.mkdir(exist_ok=True)
    reports.mkdir(exist_ok=True)
    for i, (fmt, path) in enumerate(entries):
        probe.files_tried.add(os.fsdecode(path))
        probe.per_format[fmt] += 1
        store, report = stores / f"f{i:03d}", reports / f"f{i:03d}.json"
        argv = ["ingest", os.fsdecode(path), "--store", str(store), "--report", str(report), *extra_args(fmt, path)]
        res = probe.run(argv, f"ingest {vis(path.name, 60)}", timeout=120)
        rep = check_ingest(probe, res, f"{fmt}/{os.fsdecode(path.name)}", report, store, [(fmt, path)], None, False)
        entry = (rep or {}).get("files", [{}])[0] if rep and rep.get("files") else {}
        results[os.fsdecode(path)] = {
            "rc": res.rc,
            "format": entry.get("format"),
            "status": entry.get("status"),
            "detected": entry.get("detected"),
            "error": entry.get("error"),
            "read": entry.get("rows_read"),
            "accepted": entry.get("accepted"),
            "quarantined": entry.get("quarantined"),
            "nominal": fmt,
        }
        # forced format where detection did not take the nominal one
        if fmt in FORMATS and entry.get("format") != fmt:
            store2, report2 = stores / f"f{i:03d}-forced", reports / f"f{i:03d}-forced.json"
            argv = [
                "ingest",
                os.fsdecode(path),
                "--store",
                str(store2),
                "--report",
                str(report2),
                "--format",
                fmt,
                *extra_args(fmt, path),
            ]
            res2 = probe.run(argv, f"ingest --format {fmt} {vis(path.name, 60)}", timeout=120)
            rep2 = check_ingest(
                probe,
                res2,
                f"{fmt}/{os.fsdecode(path.name)} --format {fmt}",
                report2,
                store2,
                [(fmt, path)],
                fmt,
                False,
            )
            e2 = (rep2 or {}).get("files", [{}])[0] if rep2 and rep2.get("files") else {}
            results[os.fsdecode(path)]["forced"] = {
                "rc": res2.rc,
                "status": e2.get("status"),
                "error": e2.get("error"),
                "read": e2.get("rows_read"),
                "quarantined": e2.get("quarantined"),
            }
        for tree in (store, stores / f"f{i:03d}-forced"):
            hostile_xml = any(k in path.name for k in ("xinclude", "doctype", "xxe"))
            if tree.is_dir() and hostile_xml and SENTINEL in strings_in_store(tree):
                probe.find(
                    "hostile-xml",
                    f"{fmt}/{os.fsdecode(path.name)}",
                    "an external entity / XInclude was expanded into the store",
                    res,
                )
            shutil.rmtree(tree, ignore_errors=True)
    return results


def phase_cross(probe: Probe, entries: list[tuple[str, Path]]) -> None:
    """Each format forced onto the other formats' files, in one batch per format (--skip-rejected)."""
    small = [(f, p) for f, p in entries if p.is_file() and p.stat().st_size < 2_000_000]
    for k, target in enumerate(FORMATS):
        if probe.elapsed() > TIME_BUDGET - 120:
            probe.notes.append(f"cross-format batches stopped at {target} (time budget)")
            break
        others = [(f, p) for f, p in small if f != target]
        step = max(1, len(others) // 18)
        chosen = others[k % step :: step][:18]
        if target == "amlsim":
            chosen = [(f, p) for f, p in chosen if p.suffix == ".csv"][:6]
        if not chosen:
            continue
        store, report = probe.work / "stores" / f"x-{target}", probe.work / "reports" / f"x-{target}.json"
        extra: list[str] = []
        if target == "bank-csv":
            extra = ["--mapping", "finwatch-synth-bank"]
        elif target == "customers-csv":
            extra = ["--mapping", "finwatch-synth-customers"]
        elif target == "exchange-ledger":
            extra = ["--account", "PROBE-EXCHANGE"]
        argv = [
            "ingest",
            *[os.fsdecode(p) for _f, p in chosen],
            "--store",
            str(store),
            "--report",
            str(report),
            "--format",
            target,
            "--skip-rejected",
            *extra,
        ]
        res = probe.run(argv, f"ingest --format {target} (cross, {len(chosen)} files)", timeout=240)
        check_ingest(probe, res, f"cross --format {target}", report, store, chosen, target, False)
        shutil.rmtree(store, ignore_errors=True)


def phase_special(probe: Probe, entries: list[tuple[str, Path]], world: Path | None) -> None:
    w = probe.work / "special"
    w.mkdir(exist_ok=True)
    valid = FIXTURES / "mt940" / "knab.sta"

    def ingest(label: str, paths: list[str], *extra: str, timeout: float = 60) -> tuple[Result, Path]:
        store = w / f"s-{re.sub(r'[^a-z0-9]+', '-', label.lower())}"
        report = w / f"r-{re.sub(r'[^a-z0-9]+', '-', label.lower())}.json"
        res = probe.run(
            ["ingest", *paths, "--store", str(store), "--report", str(report), *extra], label, timeout=timeout
        )
        check_ingest(probe, res, f"special: {label}", report, store, [], None, False)
        return res, store

    # FIFO and devices as inputs and as every other file an option reads
    fifo = w / "pipe.csv"
    if not fifo.exists():
        os.mkfifo(fifo)
    for label, paths, extra in (
        ("FIFO as input", [str(fifo)], []),
        ("FIFO as input, --format bank-csv", [str(fifo)], ["--format", "bank-csv", "--mapping", "finwatch-synth-bank"]),
        ("FIFO as input, --format camt053", [str(fifo)], ["--format", "camt053"]),
        ("/dev/zero as input", ["/dev/zero"], []),
        ("/dev/zero as input, --format mt940", ["/dev/zero"], ["--format", "mt940"]),
        ("/dev/null as input", ["/dev/null"], []),
        ("/dev/urandom --format ofx", ["/dev/urandom"], ["--format", "ofx"]),
        ("FIFO as --fx", [str(valid)], ["--fx", str(fifo)]),
        ("FIFO as --mapping", [str(valid)], ["--format", "bank-csv", "--mapping", str(fifo)]),
        ("FIFO as --pseudonym-key-file", [str(valid)], ["--pseudonym-key-file", str(fifo)]),
        ("FIFO as --config", [str(valid)], ["--config", str(fifo)]),
        ("FIFO as --blocks", [str(FIXTURES / "ethereum_etl" / "token_transfers.csv")], ["--blocks", str(fifo)]),
        ("/dev/zero as --fx", [str(valid)], ["--fx", "/dev/zero"]),
        ("/dev/zero as --pseudonym-key-file", [str(valid)], ["--pseudonym-key-file", "/dev/zero"]),
        ("folder as input, --format mt940", [str(FIXTURES / "mt940")], ["--format", "mt940"]),
        ("missing input", [str(w / "does-not-exist.csv")], []),
        ("dangling symlink", [str(w / "dangling.sta")], []),
        ("symlink loop", [str(w / "loop.sta")], []),
        ("name too long", [str(w / ("n" * 300 + ".sta"))], []),
        ("store is a file", [str(valid)], []),
    ):
        if label == "dangling symlink" and not (w / "dangling.sta").is_symlink():
            os.symlink(w / "nowhere.sta", w / "dangling.sta")
        if label == "symlink loop" and not (w / "loop.sta").is_symlink():
            os.symlink(w / "loop.sta", w / "loop.sta")
        if label == "store is a file":
            res = probe.run(["ingest", *paths, "--store", "/etc/hostname/store"], label, timeout=60)
            probe.check_output(res, {2}, f"special: {label}")
            continue
        res, _store = ingest(label, paths, *extra, timeout=12)
        if (
            not res.timed_out
            and res.rc == 0
            and label.startswith(("FIFO as input", "/dev/zero as input", "/dev/urandom"))
        ):
            probe.find("hang", f"special: {label}", "a FIFO / device was read and the batch committed (exit 0)", res)

    # --report into a folder that does not exist, into a folder, onto a read-only file system
    for label, rep in (
        ("--report in a missing folder", w / "no-such-folder" / "r.json"),
        ("--report is a folder", w),
        ("--report on a read-only file system", Path("/sys/fwprobe-report.json")),
    ):
        store = w / f"s-{re.sub(r'[^a-z0-9]+', '-', label.lower())}"
        res = probe.run(["ingest", str(valid), "--store", str(store), "--report", str(rep)], label, timeout=60)
        probe.check_output(res, {0, 2}, f"special: {label}")
        committed = store_counts(store) is not None
        if res.rc != 0 and committed and "was committed" not in res.err:  # failing is fine if it says so
            probe.find(
                "report-folder", f"special: {label}", f"exit {res.rc} but the batch was committed to {store}", res
            )
        if res.rc == 0 and not rep.is_file():
            probe.find("report-folder", f"special: {label}", "exit 0 without writing the --report file", res)
        if not committed and store.exists():
            probe.find(
                "store-created",
                f"special: {label}",
                f"nothing committed but the store folder exists: {sorted(os.listdir(store))}",
                res,
            )

    # hostile store / report paths
    for k, tok in enumerate(("\x1b[31m", "\u202e", "[bold]", "[1]", ":x:", "\x9b", "*", "?")):
        name = f"store-{tok}-x"
        store = w / name
        res = probe.run(
            ["ingest", str(valid), "--store", str(store), "--report", str(w / f"rep-store-{k}.json")],
            f"ingest into a store named {vis(name)}",
            timeout=60,
        )
        probe.check_output(res, {0, 2}, f"special: store path {vis(name)}", tokens=hostile_tokens_in(name))
        shutil.rmtree(store, ignore_errors=True)

    # decimal = "," with and without thousands: 12.50 is not an amount
    if world is not None:
        mapping = (REPO / "src/finwatch/data/mappings/finwatch-synth-bank.toml").read_text()
        lines = (world / "bank-csv" / "transactions.csv").read_text(encoding="utf-8").split("\n")
        header, row = lines[0], lines[1]
        cols = header.split(";")
        iamt, iref = cols.index("Amount"), cols.index("Reference")
        cases = {  # amount text → accepted?
            "thousands-dot": (
                'thousands = "."',
                {
                    "12.50": False,
                    "-12.50": False,
                    "1.23": False,
                    "1.234,56": True,
                    "1234,56": True,
                    "12,5": True,
                    "1,234.56": False,
                    "12.5": False,
                    "1.234.567,89": True,
                    "12.345": True,
                    "1.2345,6": False,
                    ",5": False,
                    "1.234": True,
                    "1234.567": False,
                },
            ),
            "no-thousands": (
                'thousands = ""',
                {
                    "12.50": False,
                    "1.234,56": False,
                    "1234,56": True,
                    "12.5": False,
                    "12,50": True,
                    ".5": False,
                    ",5": False,
                },
            ),
        }
        for name, (thousands_line, amounts) in cases.items():
            mp = w / f"decimal-{name}.toml"
            mp.write_text(
                re.sub(r"^thousands = .*$", thousands_line, mapping, count=1, flags=re.M).replace(
                    'name = "finwatch-synth-bank"', f'name = "probe-{name}"'
                )
            )
            rows = [header]
            for j, amt in enumerate(amounts):
                f = row.split(";")
                f[iamt] = amt
                f[iref] = f"DEC-{name}-{j}"
                rows.append(";".join(f))
            data = w / f"decimal-{name}.csv"
            data.write_text("\n".join(rows) + "\n", encoding="utf-8")
            store, report = w / f"s-decimal-{name}", w / f"r-decimal-{name}.json"
            res = probe.run(
                [
                    "ingest",
                    str(data),
                    "--store",
                    str(store),
                    "--report",
                    str(report),
                    "--format",
                    "bank-csv",
                    "--mapping",
                    str(mp),
                ],
                f"ingest decimal ',' ({name})",
                timeout=60,
            )
            check_ingest(probe, res, f"special: decimal {name}", report, store, [("bank-csv", data)], "bank-csv", False)
            accepted = set()
            if store_counts(store):
                import pyarrow.parquet as pq

                for m in sorted((store / "manifests").glob("*.json")):
                    for fi in json.loads(m.read_text())["files"]:
                        if fi["table"] == "transactions":
                            accepted |= set(
                                pq.read_table(store / fi["path"], columns=["txn_id"]).column("txn_id").to_pylist()
                            )
            for j, (amt, ok) in enumerate(amounts.items()):
                got = any(t.endswith(f"DEC-{name}-{j}") for t in accepted)
                if got != ok:
                    probe.find(
                        "decimal",
                        f"special: decimal {name}",
                        f"amount {amt!r} with decimal ',' and "
                        f"{thousands_line}: {'accepted' if got else 'quarantined'}"
                        f", expected {'accepted' if ok else 'quarantined'}",
                        res,
                    )

    # a full disk: a tiny tmpfs (root only; skipped where mount is refused)
    probe_full_disk(probe, w, valid)


def probe_full_disk(probe: Probe, w: Path, valid: Path) -> None:
    mnt = w / "full"
    mnt.mkdir(exist_ok=True)
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        probe.notes.append("full-disk checks skipped (cannot mount a tmpfs)")
        return
    probe.mounts.append(mnt)
    try:
        big = FIXTURES / "ethereum_etl" / "transactions.csv"
        store = mnt / "store"
        res = probe.run(["ingest", str(big), "--store", str(store)], "ingest onto a full file system", timeout=90)
        probe.check_output(res, {2}, "special: full disk (ingest)")
        if res.rc == 2 and "No space left" not in res.text:
            probe.find(
                "os-error",
                "special: full disk (ingest)",
                f"no 'No space left on device' in: {vis(res.err.strip()[-200:])}",
                res,
            )
        if store.exists() and store_counts(store) is None and any(store.iterdir()):
            probe.find(
                "store-created",
                "special: full disk (ingest)",
                f"nothing committed, yet the new store holds {sorted(os.listdir(store))}",
                res,
            )
        left = leftovers(mnt)
        if left:
            probe.find("leftover", "special: full disk (ingest)", f"left behind: {left[:5]}", res)
        # fill the disk first so that the report cannot be written
        filler = mnt / "filler"
        try:
            with open(filler, "wb") as fh:
                fh.write(b"\0" * 64 * 1024)
        except OSError:
            pass
        res = probe.run(
            ["ingest", str(valid), "--store", str(w / "s-full-report2"), "--report", str(mnt / "report.json")],
            "--report onto a full file system",
            timeout=60,
        )
        probe.check_output(res, {0, 2}, "special: full disk (--report)")
        if res.rc != 0 and store_counts(w / "s-full-report2") is not None and "was committed" not in res.err:
            probe.find(
                "report-folder",
                "special: full disk (--report)",
                f"exit {res.rc}: the report could not be written, yet the batch was committed",
                res,
            )
        left = leftovers(mnt)
        if left:
            probe.find("leftover", "special: full disk (--report)", f"left behind: {left[:5]}", res)
        probe.full_mount = mnt
    finally:
        pass


# --- the pipeline -----------------------------------------------------------------------------------------------------
HOSTILE_IDS = [
    "=cmd|' /C calc'!A0",
    "+HX1-SUM(A1)",
    "@HX2",
    "-HX3+1",
    "HX4[bold]B[/bold][/x]:x:",
    "HX5\u202egpj.exe",
    "HX6\u009b31m",
    "HX7<img src=x onerror=alert(1)>",
    "HX8\u2028Z",
    "HX9\x1b[31mR",
    "\tHX10",
    'HX11;x,y"z',
    "HX12\ufffe\uffff",
    "HX13\u2066\u2069\u061c",
    "HX14]]><x/>&amp;",
    "HX15" + "9" * 3000,
    "../../HX16",
]


def hostile_world_files(world: Path, out: Path) -> tuple[list[Path], list[str]]:
    """Copies of the world's suspicious accounts under hostile ids (transactions, accounts, customer extract)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    tx = pq.read_table(world / "truth" / "transactions.parquet")
    acc = pq.read_table(world / "truth" / "accounts.parquet")
    labels = pq.read_table(world / "labels" / "accounts.parquet").to_pylist()
    positive = sorted({r["subject_id"] for r in labels if r["label"]})
    bank = set(pc.filter(acc, pc.equal(acc.column("kind"), "bank_account")).column("account_id").to_pylist())
    src, dst = tx.column("src_account").to_pylist(), tx.column("dst_account").to_pylist()
    activity = Counter(a for a in src + dst if a in positive and a in bank)
    chosen = sorted(activity, key=lambda a: (-activity[a], a))[: len(HOSTILE_IDS)]
    rename = dict(zip(chosen, HOSTILE_IDS, strict=False))
    rows = tx.to_pylist()
    new_rows = []
    for r in rows:
        hit = r["src_account"] in rename or r["dst_account"] in rename
        if not hit:
            continue
        r = dict(r)
        hid = rename.get(r["src_account"]) or rename.get(r["dst_account"])
        k = HOSTILE_IDS.index(hid)
        r["src_account"] = rename.get(r["src_account"], r["src_account"])
        r["dst_account"] = rename.get(r["dst_account"], r["dst_account"])
        r["txn_id"] = (
            [
                '=HYPERLINK("http://x")',
                "@T",
                "+T",
                "-T",
                "[/x]T",
                "T\u202e",
                "T\u009b",
                "<b>T</b>",
                "T\u2028",
                "T\x1b[31m",
                "\tT",
                'T;1,2"3',
                "T\ufffe",
                "T\u2066",
                "T]]>",
                "T" * 500,
                "../T",
            ][k]
            + "-"
            + r["txn_id"]
        )
        r["counterparty_name"] = (r["counterparty_name"] or "") + " " + ["[bold]", ":x:", HTML, RLO, C1_CSI][k % 5]
        r["description"] = (r["description"] or "") + " =1+1 [/x]"
        new_rows.append(r)
    pq.write_table(pa.Table.from_pylist(new_rows, schema=tx.schema), out / "hx-transactions.parquet")
    acc_rows = []
    for r in acc.to_pylist():
        if r["account_id"] in rename:
            r = dict(r)
            r["account_id"] = rename[r["account_id"]]
            k = HOSTILE_IDS.index(r["account_id"])
            r["holder_name"] = [
                "=cmd|' /C calc'!A0",
                "[bold]Eve[/bold][/x]",
                "Mal\u202eyrol",
                ":x: Bob",
                "Ann\u009b31m",
                "<script>alert(1)</script>",
                "@Carol",
                "-Dan",
                "+Erin",
                "Zoe\u2028Line",
                "\tTab",
                'Q"uote;x,y',
                "N\ufffe",
                "I\u2066so",
                "C]]>D",
                "L" * 2000,
                "../../P",
            ][k]
            if r.get("given_name"):
                r["given_name"] = r["holder_name"]
            acc_rows.append(r)
    pq.write_table(pa.Table.from_pylist(acc_rows, schema=acc.schema), out / "hx-accounts.parquet")
    return [out / "hx-transactions.parquet", out / "hx-accounts.parquet"], [rename[a] for a in chosen]


def check_text_file(probe: Probe, path: Path, where: str, xml: bool = False, html: bool = False) -> None:
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        probe.find("other", where, f"{path}: unreadable ({exc})")
        return
    pattern = UNSAFE_XML if xml else UNSAFE_OUT
    if html:
        text = text.replace("\r\n", "\n")
    bad = Counter()
    example = {}
    for m in pattern.finditer(text):
        o = ord(m.group())
        key = f"raw byte 0x{o - 0xDC00:02X}" if 0xDC80 <= o <= 0xDCFF else f"U+{o:04X}"
        if key == "U+0009":
            continue
        bad[key] += 1
        example.setdefault(key, text[max(0, m.start() - 60) : m.end() + 40])
    if bad:
        probe.find(
            "escape",
            where,
            f"{path.name}: raw {', '.join(f'{k} ×{n}' for k, n in sorted(bad.items()))} — "
            + "; ".join(f"{k}: …{vis(v, 110)}…" for k, v in example.items()),
        )
    if html:
        for needle in ("<img src=x onerror", "<script>alert(1)</script>", "<b>T</b>"):
            if needle in text:
                i = text.index(needle)
                probe.find(
                    "html", where, f"{path.name}: markup from the data unescaped: …{vis(text[i - 80 : i + 60])}…"
                )
    if REPR.search(text):
        m = REPR.search(text)
        probe.find("repr", where, f"{path.name}: Python object repr: …{vis(text[m.start() - 40 : m.end() + 20])}…")


def check_leads_csv(probe: Probe, path: Path, hostile: list[str], where: str) -> dict[str, int]:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    check_text_file(probe, path, where)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    stats = {"rows": len(body), "hostile_subjects": 0}
    seen_cells = set()
    for r in body:
        if len(r) != len(header):
            probe.find("list", where, f"leads.csv: a row has {len(r)} cells, the header {len(header)}")
            continue
        rec = dict(zip(header, r, strict=True))
        for col, cell in rec.items():
            if not cell:
                continue
            if cell.startswith(FORMULA_STARTS) and not NUMBER.match(cell) and (col, cell) not in seen_cells:
                seen_cells.add((col, cell))
                probe.find("formula", where, f"leads.csv column {col} starts with {cell[0]!r}: {vis(cell, 120)}")
            if col in LIST_COLUMNS:
                try:
                    items = json.loads(cell)
                    if not isinstance(items, list):
                        raise ValueError("not a list")
                except ValueError as exc:
                    probe.find("list", where, f"leads.csv column {col} is not a JSON array ({exc}): {vis(cell, 120)}")
                    continue
                for it in items:
                    if isinstance(it, str) and it.startswith(FORMULA_STARTS) and not NUMBER.match(it):
                        probe.find(
                            "formula",
                            where,
                            f"leads.csv list {col} holds an unquoted formula-like element {vis(it, 80)}",
                        )
    return stats


def phase_pipeline(probe: Probe, world: Path, corpus_entries_: list[tuple[str, Path]]) -> None:
    w = probe.work / "pipe"
    w.mkdir(exist_ok=True)
    store = w / "store"
    models = probe.work / "models"
    base = [
        world / "truth" / "transactions.parquet",
        world / "truth" / "accounts.parquet",
        world / "labels" / "accounts.parquet",
        world / "labels" / "transactions.parquet",
        world / "customers" / "customers.csv",
    ]
    res = probe.run(
        [
            "ingest",
            *map(str, base),
            "--store",
            str(store),
            "--fx",
            str(world / "fx_rates.csv"),
            "--report",
            str(w / "ingest-world.json"),
        ],
        "ingest the world",
        timeout=240,
    )
    check_ingest(
        probe,
        res,
        "pipeline: ingest world",
        w / "ingest-world.json",
        store,
        [("finwatch-tables", p) for p in base[:4]],
        None,
        False,
    )
    if res.rc != 0:
        probe.find("other", "pipeline", f"the world could not be ingested (exit {res.rc}); pipeline skipped", res)
        return
    res = probe.run(
        [
            "train",
            "--store",
            str(store),
            "--level",
            "account",
            "--name",
            "probe",
            "--models",
            str(models),
            "--seed",
            "0",
        ],
        "train",
        timeout=300,
    )
    probe.check_output(res, {0}, "pipeline: train", hostile_input=False)
    if res.rc != 0:
        return
    hostile_files, hostile_ids = hostile_world_files(world, w / "hostile")
    extra = [
        p
        for f, p in corpus_entries_
        if p.is_file()
        and p.stat().st_size < 1_000_000
        and f in ("mt940", "ofx", "camt053", "bank-csv", "customers-csv", "ethereum-etl", "exchange-ledger")
        and (p.name.startswith(("hx", "fn-")) or "=" in p.name)
    ]
    paths = [*hostile_files, *extra]
    rep_path = w / "ingest-hostile.json"
    res = probe.run(
        [
            "ingest",
            *map(str, paths),
            "--store",
            str(store),
            "--skip-rejected",
            "--report",
            str(rep_path),
            "--account",
            "PROBE-EXCHANGE",
        ],
        f"ingest {len(paths)} hostile files into the world's store",
        timeout=240,
    )
    check_ingest(
        probe,
        res,
        "pipeline: ingest hostile files",
        rep_path,
        store,
        [("finwatch-tables", hostile_files[0])],
        None,
        True,
    )
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ts = pq.read_table(world / "truth" / "transactions.parquet", columns=["ts"]).column("ts")
    last = pc.max(ts).as_py()
    as_of = last.date().toordinal() + 1
    import datetime as dt

    as_of_s = dt.date.fromordinal(as_of).isoformat()
    runs = w / "runs"
    run = runs / "r1"
    res = probe.run(
        [
            "score",
            "--store",
            str(store),
            "--model",
            "probe@latest",
            "--models",
            str(models),
            "--as-of",
            as_of_s,
            "--out",
            str(run),
            "--budget",
            "12%",
        ],
        "score",
        timeout=300,
    )
    probe.check_output(res, {0}, "pipeline: score")
    if res.rc != 0 or not (run / "leads.csv").is_file():
        probe.find("other", "pipeline: score", f"no run written (exit {res.rc}); later steps skipped", res)
        return
    stats = check_leads_csv(probe, run / "leads.csv", hostile_ids, "pipeline: leads.csv (score)")
    subjects = set(pq.read_table(run / "leads.parquet", columns=["subject_id"]).column("subject_id").to_pylist())
    raised = [h for h in hostile_ids if h in subjects]
    probe.notes.append(
        f"pipeline: {stats['rows']} leads; {len(raised)} of the {len(hostile_ids)} planted hostile "
        f"accounts raised: {', '.join(vis(h, 40) for h in raised)}"
    )
    res = probe.run(["report", str(run)], "report", timeout=300)
    probe.check_output(res, {0}, "pipeline: report")
    for html_file in [run / "report.html", *sorted((run / "report-cases").glob("*.html"))]:
        if html_file.is_file():
            check_text_file(probe, html_file, "pipeline: report", html=True)
    res = probe.run(
        [
            "export",
            "goaml",
            "--run",
            str(run),
            "--xsd",
            str(GOAML_XSD),
            "--mapping",
            str(GOAML_MAPPING),
            "--allow-invalid",
        ],
        "export goaml",
        timeout=400,
    )
    probe.check_output(res, {0}, "pipeline: export goaml")
    check_exports(probe, run / "goaml", "pipeline: export goaml", res)
    res = probe.run(
        ["export", "fincen-sar", "--run", str(run), "--filer", str(FILER), "--allow-invalid"],
        "export fincen-sar",
        timeout=300,
    )
    probe.check_output(res, {0}, "pipeline: export fincen-sar")
    check_exports(probe, run / "fincen", "pipeline: export fincen-sar", res)
    if (run / "leads.csv").is_file():
        check_leads_csv(probe, run / "leads.csv", hostile_ids, "pipeline: leads.csv (after the exports)")
    res = probe.run(
        ["runs", "verify", str(run), "--models", str(models), "--json", str(w / "verify.json")],
        "runs verify",
        timeout=120,
    )
    probe.check_output(res, {0}, "pipeline: runs verify")
    left = leftovers(runs) + leftovers(store)
    if left:
        probe.find("leftover", "pipeline", f"left behind after the pipeline: {left[:6]}")

    # --- half-finished runs beside a new run ---
    live = run
    if probe.elapsed() < TIME_BUDGET + 60:
        live = phase_half_runs(probe, store, models, run, runs, as_of_s)
    # --- OS errors on outputs, odd output paths ---
    phase_output_errors(probe, store, models, live, as_of_s)
    probe.pipeline = (store, models, live, as_of_s)  # type: ignore[attr-defined]


def check_exports(probe: Probe, folder: Path, where: str, res: Result) -> None:
    from lxml import etree

    if not folder.is_dir():
        if res.rc == 0:
            probe.find("export", where, f"exit 0 but {folder} does not exist", res)
        return
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".xml":
            try:
                etree.parse(str(p), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
            except etree.XMLSyntaxError as exc:
                probe.find("export", where, f"{p.name}: not well-formed XML: {exc}", res)
            check_text_file(probe, p, where, xml=True)
        elif p.suffix in (".txt", ".md", ".json", ".html"):
            check_text_file(probe, p, where, xml=p.suffix in (".txt", ".md"), html=p.suffix == ".html")
    left = leftovers(folder.parent)
    if left:
        probe.find("leftover", where, f"left behind: {left[:5]}", res)


def phase_half_runs(probe: Probe, store: Path, models: Path, run: Path, runs: Path, as_of: str) -> Path:
    """Copies of the run as earlier runs, each half-finished in one way and dated a different day before; the next
    run must count none of them (its leads' first_raised tells which one it took)."""
    import datetime as dt

    import pyarrow.parquet as pq

    data = (run / "leads.parquet").read_bytes()
    skip = shutil.ignore_patterns("goaml", "fincen", "report*")

    def cut_parquet(f: Path) -> None:
        (f / "leads.parquet").write_bytes(data[: len(data) // 2])

    def no_json(f: Path) -> None:
        (f / "leads.json").unlink()

    def cut_run_json(f: Path) -> None:
        (f / "run.json").write_bytes((f / "run.json").read_bytes()[:100])

    def cut_csv(f: Path) -> None:
        (f / "leads.csv").write_bytes((run / "leads.csv").read_bytes()[:200])

    def zero_parquet(f: Path) -> None:
        (f / "leads.parquet").write_bytes(b"\0" * len(data))

    def nothing(f: Path) -> None:
        pass

    cases = [  # label, folder name, damage, counted as an earlier run is a finding
        ("leads.parquet cut in half", "half-parquet", cut_parquet, True),
        ("leads.json missing", "no-leads-json", no_json, True),
        ("a hidden .partial- staging folder (complete)", ".r2.partial-pr0be123", nothing, True),
        ("leads.csv cut to 200 bytes", "half-csv", cut_csv, True),
        ("leads.parquet zeroed, same size", "zeroed-parquet", zero_parquet, True),
        ("run.json cut to 100 bytes", "cut-run-json", cut_run_json, True),
    ]
    by_day: dict[str, str] = {}
    zruns = runs.parent / "runs-zeroed"  # a same-size damaged file gets a parent folder of its own
    for k, (label, name, damage, _bad) in enumerate(cases):
        folder = (zruns if name == "zeroed-parquet" else runs) / name
        shutil.copytree(run, folder, ignore=skip)
        day = (dt.date.fromisoformat(as_of) - dt.timedelta(days=k + 1)).isoformat() + "T00:00:00+00:00"
        j = json.loads((folder / "run.json").read_text())
        j["as_of"] = day
        (folder / "run.json").write_text(json.dumps(j, indent=2, sort_keys=True) + "\n")
        damage(folder)
        by_day[day] = label
    live = runs.parent / "live-r1"
    os.rename(run, live)  # the complete run itself would be a legitimate earlier run: only the damaged ones stay
    for parent in (runs, zruns):
        new = parent / "r2"
        res = probe.run(
            [
                "score",
                "--store",
                str(store),
                "--model",
                "probe@latest",
                "--models",
                str(models),
                "--as-of",
                as_of,
                "--out",
                str(new),
                "--budget",
                "12%",
            ],
            f"score beside half-finished runs in {parent.name}/",
            timeout=300,
        )
        probe.check_output(res, {0}, f"half-finished runs: score beside {', '.join(sorted(os.listdir(parent)))}")
        if (new / "leads.parquet").is_file():
            firsts = Counter(
                pq.read_table(new / "leads.parquet", columns=["first_raised"]).column("first_raised").to_pylist()
            )
            for first, n in sorted(firsts.items(), key=lambda kv: str(kv[0])):
                key = str(first)
                label = next((lab for day, lab in by_day.items() if key.startswith(day[:10])), None)
                if label is not None:
                    probe.find(
                        "partial-run",
                        "half-finished runs: score",
                        f"{n} leads have first_raised {key}: the run folder with {label} was counted as an earlier run",
                        res,
                    )
            res = probe.run(["report", str(new)], "report beside half-finished runs", timeout=300)
            probe.check_output(res, {0}, "half-finished runs: report")
    for label, name, _damage, _bad in cases:
        folder = (zruns if name == "zeroed-parquet" else runs) / name
        if name.startswith("."):
            continue
        res = probe.run(["runs", "verify", str(folder), "--models", str(models)], f"runs verify ({label})", timeout=90)
        probe.check_output(res, {1, 2}, f"half-finished runs: verify {label}")
        if res.rc == 0 and "leads.csv" not in label:
            probe.find("partial-run", f"half-finished runs: verify {label}", "runs verify passed a damaged run", res)
        out = probe.work / "pipe" / f"rep-{name}.html"
        res = probe.run(["report", str(folder), "--out", str(out)], f"report ({label})", timeout=120)
        probe.check_output(res, {0, 2}, f"half-finished runs: report {label}")
        if res.rc == 0 and "leads.csv" not in label:
            probe.find(
                "partial-run",
                f"half-finished runs: report {label}",
                "a report was written from a half-finished run folder",
                res,
            )
    return live


def phase_output_errors(probe: Probe, store: Path, models: Path, live: Path, as_of: str) -> None:
    """Outputs that cannot be written: the message names the file; nothing half-written is left. And paths with
    glob characters ([ ] * ?), which are ordinary characters in a file name."""
    runs = live.parent
    if not (live / "run.json").is_file():
        return
    odd_store = store.parent / "store[prod]*?"
    if not odd_store.exists():
        shutil.copytree(store, odd_store)
    odd_runs = store.parent / "runs[2026]"
    fifo = str(probe.work / "special" / "pipe.csv")
    fincen_xsd = REPO / "features" / "fincen" / "EFL_SARXBatchSchema.xsd"
    uri = (probe.work / "secret.txt").as_uri()

    def with_doctype(xsd: Path, out: Path, use: bool) -> str:
        text = xsd.read_text(encoding="utf-8")
        root = re.search(r"<((?:\w+:)?schema)[\s>]", text).group(1)  # type: ignore[union-attr]
        dt = f'<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "{uri}">]>'
        m = re.match(r"\s*<\?xml[^>]*\?>", text)
        text = text[: m.end()] + dt + text[m.end() :] if m else dt + text
        if use:
            sm = re.search(r"<(?:\w+:)?schema[\s>][^>]*>", text)
            pre = re.match(r"<(\w+:)?", sm.group()).group(1) or ""  # type: ignore[union-attr]
            note = f"<{pre}annotation><{pre}documentation>&xxe;</{pre}documentation></{pre}annotation>"
            text = text[: sm.end()] + note + text[sm.end() :]
        out.write_text(text, encoding="utf-8")
        return str(out)

    (probe.work / "hostile-filer.yaml").write_text(
        FILER.read_text() + "\nx: !!python/object/apply:os.system ['true']\n"
    )
    (probe.work / "xout").mkdir(exist_ok=True)
    xo = probe.work / "xout"
    goaml = ["export", "goaml", "--run", str(live), "--mapping", str(GOAML_MAPPING), "--allow-invalid"]
    fincen = ["export", "fincen-sar", "--run", str(live), "--allow-invalid"]
    score = [
        "score",
        "--store",
        str(store),
        "--model",
        "probe@latest",
        "--models",
        str(models),
        "--as-of",
        as_of,
        "--budget",
        "12%",
    ]
    # label, argv, allowed exit statuses, timeout (a FIFO or device must be refused at once: 12 s is a hang)
    cases: list[tuple[str, list[str], set[int], float]] = [
        (
            "score --store with [ ] * ? in its path",
            [
                "score",
                "--store",
                str(odd_store),
                "--model",
                "probe@latest",
                "--models",
                str(models),
                "--as-of",
                as_of,
                "--out",
                str(store.parent / "runs-odd" / "r"),
                "--budget",
                "12%",
            ],
            {0},
            300,
        ),
        ("score --out with [ ] in its path", [*score, "--out", str(odd_runs / "r[1]")], {0}, 300),
        ("report of a run with [ ] in its path", ["report", str(odd_runs / "r[1]")], {0}, 300),
        (
            "export fincen-sar of a run with [ ] in its path",
            ["export", "fincen-sar", "--run", str(odd_runs / "r[1]"), "--filer", str(FILER), "--allow-invalid"],
            {0},
            300,
        ),
        (
            "runs verify of a run with [ ] in its path",
            ["runs", "verify", str(odd_runs / "r[1]"), "--models", str(models)],
            {0},
            120,
        ),
        (
            "ingest into an existing store with [ ] * ? in its path",
            ["ingest", str(FIXTURES / "mt940" / "knab.sta"), "--store", str(odd_store)],
            {0},
            120,
        ),
        ("score --out on a read-only fs", [*score, "--out", "/sys/fwprobe-run"], {2}, 120),
        ("score --out under a file", [*score, "--out", "/etc/hostname/run"], {2}, 120),
        (
            "report --out in a missing folder",
            ["report", str(live), "--out", str(probe.work / "nope" / "r.html")],
            {0, 2},
            120,
        ),
        ("report --out on a read-only fs", ["report", str(live), "--out", "/sys/fwprobe.html"], {2}, 120),
        (
            "report --out is not .html",
            ["report", str(live), "--out", str(probe.work / "pipe" / "report.txt")],
            {2},
            120,
        ),
        ("report --out is a foreign file", ["report", str(live), "--out", str(probe.work / "secret.txt")], {2}, 120),
        ("goaml --out on a read-only fs", [*goaml, "--xsd", str(GOAML_XSD), "--out", "/sys/fwprobe-goaml"], {2}, 120),
        ("goaml --xsd is a FIFO", [*goaml, "--xsd", fifo, "--out", str(xo / "g-fifo")], {2}, 12),
        (
            "goaml --mapping is /dev/zero",
            [
                "export",
                "goaml",
                "--run",
                str(live),
                "--xsd",
                str(GOAML_XSD),
                "--mapping",
                "/dev/zero",
                "--allow-invalid",
                "--out",
                str(xo / "g-zero"),
            ],
            {2},
            12,
        ),
        (
            "goaml --xsd with a DOCTYPE and a used external entity",
            [*goaml, "--xsd", with_doctype(GOAML_XSD, probe.work / "xxe-used.xsd", True), "--out", str(xo / "g-u")],
            {0, 2},
            120,
        ),
        (
            "goaml --xsd with a DOCTYPE (external entity declared, not used)",
            [*goaml, "--xsd", with_doctype(GOAML_XSD, probe.work / "xxe-unused.xsd", False), "--out", str(xo / "g-d")],
            {0, 2},
            120,
        ),
        (
            "fincen --xsd with a DOCTYPE and a used external entity",
            [
                *fincen,
                "--filer",
                str(FILER),
                "--xsd",
                with_doctype(fincen_xsd, probe.work / "f-xxe-used.xsd", True),
                "--out",
                str(xo / "f-u"),
            ],
            {0, 2},
            120,
        ),
        (
            "fincen --xsd with a DOCTYPE (external entity declared, not used)",
            [
                *fincen,
                "--filer",
                str(FILER),
                "--xsd",
                with_doctype(fincen_xsd, probe.work / "f-xxe-unused.xsd", False),
                "--out",
                str(xo / "f-d"),
            ],
            {0, 2},
            120,
        ),
        ("fincen --filer is a FIFO", [*fincen, "--filer", fifo, "--out", str(xo / "f-fifo")], {2}, 12),
        (
            "fincen --xsd is a FIFO",
            [*fincen, "--filer", str(FILER), "--xsd", fifo, "--out", str(xo / "f-xfifo")],
            {2},
            12,
        ),
        (
            "fincen --filer with YAML tags",
            [*fincen, "--filer", str(probe.work / "hostile-filer.yaml"), "--out", str(xo / "sar-yaml")],
            {0, 2},
            120,
        ),
        ("fincen --out on a read-only fs", [*fincen, "--filer", str(FILER), "--out", "/sys/fwprobe-sar"], {2}, 120),
        (
            "verify --json on a read-only fs",
            ["runs", "verify", str(live), "--models", str(models), "--json", "/sys/fwprobe-verify.json"],
            {2},
            120,
        ),
        ("verify a FIFO", ["runs", "verify", fifo, "--models", str(models)], {2}, 12),
        (
            "verify --key-file is a FIFO",
            ["runs", "verify", str(live), "--models", str(models), "--key-file", fifo],
            {2},
            12,
        ),
        ("report --store is a FIFO", ["report", str(live), "--store", fifo, "--out", str(xo / "r-fifo.html")], {2}, 12),
    ]
    full = getattr(probe, "full_mount", None)
    if full is not None:
        cases += [
            ("report --out on a full fs", ["report", str(live), "--out", str(full / "r.html")], {2}, 120),
            ("score --out on a full fs", [*score, "--out", str(full / "run")], {2}, 120),
            ("fincen --out on a full fs", [*fincen, "--filer", str(FILER), "--out", str(full / "sar")], {2}, 120),
            ("goaml --out on a full fs", [*goaml, "--xsd", str(GOAML_XSD), "--out", str(full / "goaml")], {2}, 120),
            (
                "verify --json on a full fs",
                ["runs", "verify", str(live), "--models", str(models), "--json", str(full / "verify.json")],
                {2},
                120,
            ),
        ]
    for label, argv, allowed, timeout in cases:
        if probe.elapsed() > TIME_BUDGET + 90:
            probe.notes.append(f"output-error cases stopped at {label!r} (time budget)")
            break
        res = probe.run(argv, label, timeout=timeout)
        probe.check_output(res, allowed, f"outputs: {label}")
        if "DOCTYPE" in label and res.rc == 0:
            probe.find(
                "hostile-xml",
                f"outputs: {label}",
                "an XSD with a DOCTYPE and an external entity declaration "
                "was accepted and used to validate"
                + ("" if "used" in label and "not used" not in label else " (the entity is never read: no XXE)"),
                res,
            )
        if SENTINEL in res.text:
            probe.find(
                "hostile-xml", f"outputs: {label}", "an external entity was expanded (sentinel in the output)", res
            )
        if "YAML" in label and res.rc == 0:
            probe.find("other", f"outputs: {label}", "a YAML file with a python/object tag was accepted", res)
        if (
            label == "report --out in a missing folder"
            and res.rc == 0
            and not (probe.work / "nope" / "r.html").is_file()
        ):
            probe.find("report-folder", f"outputs: {label}", "exit 0 but no report written", res)
        if full is not None and "full fs" in label:
            left = leftovers(full)
            if left:
                probe.find("leftover", f"outputs: {label}", f"left behind on the full file system: {left[:5]}", res)
    for folder in (runs, probe.work / "xout"):
        if leftovers(folder):
            probe.find("leftover", "outputs", f"left in {folder}: {leftovers(folder)[:5]}")


def phase_console(
    probe: Probe,
    entries: list[tuple[str, Path]],
    store: Path | None,
    models: Path,
    live: Path | None,
    as_of: str | None,
) -> None:
    """Hostile values on the command line, and hostile file names and data on a real terminal."""
    w = probe.work / "console"
    w.mkdir(exist_ok=True)
    knab = str(FIXTURES / "mt940" / "knab.sta")
    args: list[tuple[str, list[str], tuple[str, ...]]] = [
        (
            "--format with escapes and markup",
            ["ingest", knab, "--store", str(w / "s1"), "--format", "[bold]x\x1b[31mR:x:"],
            ("[bold]", ":x:"),
        ),
        (
            "--mapping with escapes and markup",
            ["ingest", knab, "--store", str(w / "s2"), "--format", "bank-csv", "--mapping", "[/x]:x:\x1b]0;pwned\x07"],
            ("[/x]", ":x:"),
        ),
        (
            "--jurisdiction with escapes and markup",
            ["ingest", knab, "--store", str(w / "s3"), "--jurisdiction", "[/x]\x1b[31mR\u202e"],
            ("[/x]",),
        ),
        ("report of a missing folder with escapes", ["report", str(w / "\x1b[31mred[/x]")], ("[/x]",)),
        (
            "runs verify of a missing folder with escapes",
            ["runs", "verify", str(w / "\u009b[bold]:x:")],
            ("[bold]", ":x:"),
        ),
    ]
    if store is not None and as_of is not None:
        args += [
            (
                "score --budget with escapes",
                [
                    "score",
                    "--store",
                    str(store),
                    "--models",
                    str(models),
                    "--model",
                    "probe@latest",
                    "--budget",
                    "\x1b]0;pwned\x07[/x]",
                ],
                ("[/x]",),
            ),
            (
                "score --as-of with escapes",
                [
                    "score",
                    "--store",
                    str(store),
                    "--models",
                    str(models),
                    "--model",
                    "probe@latest",
                    "--as-of",
                    "2026\u202e-01[bold]",
                ],
                ("[bold]",),
            ),
            (
                "score --model with escapes",
                [
                    "score",
                    "--store",
                    str(store),
                    "--models",
                    str(models),
                    "--model",
                    "pr[/x]obe\x1b[31mR@:x:",
                    "--as-of",
                    as_of,
                ],
                ("[/x]", ":x:"),
            ),
        ]
    for label, argv, tokens in args:
        res = probe.run(argv, label, timeout=60)
        probe.check_output(res, {2}, f"console: {label}", tokens=tokens)
    # on a terminal
    names = [p for f, p in entries if f == "mt940" and p.name.startswith(("fn-", "="))]
    if names:
        res = probe.run_tty(["ingest", *map(str, names), "--store", str(w / "tty-store")], "ingest of odd file names")
        toks = tuple(sorted({t for p in names for t in hostile_tokens_in(os.fsdecode(p.name))}))
        for kind, what in tty_problems(res, {0, 2}, toks):
            probe.find(kind, "console (tty): odd file names", what, res)
    start = next((p for f, p in entries if p.name == "hx-markup-start.txt"), None)
    if start is not None:
        res = probe.run_tty(["ingest", str(start), "--store", str(w / "tty-store2")], "ingest of a markup file")
        for kind, what in tty_problems(res, {2}, ("[bold]", "[/x]", ":x:")):
            probe.find(kind, "console (tty): markup content", what, res)
    if store is not None and as_of is not None:
        res = probe.run_tty(
            [
                "score",
                "--store",
                str(store),
                "--models",
                str(models),
                "--model",
                "probe@latest",
                "--as-of",
                as_of,
                "--out",
                str(w / "runs" / "r"),
                "--budget",
                "12%",
            ],
            "score of hostile accounts",
        )
        for kind, what in tty_problems(res, {0}, ()):
            probe.find(kind, "console (tty): score", what, res)
        if live is not None:
            res = probe.run_tty(
                [
                    "export",
                    "goaml",
                    "--run",
                    str(live),
                    "--xsd",
                    str(GOAML_XSD),
                    "--mapping",
                    str(GOAML_MAPPING),
                    "--allow-invalid",
                    "--out",
                    str(w / "goaml"),
                ],
                "export goaml of hostile accounts",
                timeout=300,
            )
            for kind, what in tty_problems(res, {0}, ()):
                probe.find(kind, "console (tty): export goaml", what, res)


def check_hostile_xml(probe: Probe, results: dict[str, dict], entries: list[tuple[str, Path]]) -> None:
    """DOCTYPE / entity documents must be rejected; nothing may expand an entity or an XInclude."""
    for fmt, p in entries:
        name = p.name
        r = results.get(os.fsdecode(p))
        if r is None:
            continue
        doctype = "doctype" in name
        if doctype:
            for mode, rr in (("auto", r), ("forced", r.get("forced"))):
                if rr is None:
                    continue
                if rr.get("status") not in ("rejected", None) or rr.get("rc") == 0:
                    probe.find(
                        "hostile-xml",
                        f"{fmt}/{name} ({mode})",
                        f"a document with a DOCTYPE / entity "
                        f"declarations was not rejected: status "
                        f"{rr.get('status')}, exit {rr.get('rc')}, read "
                        f"{rr.get('read')}, quarantined "
                        f"{rr.get('quarantined')}",
                        repro=f"{FINWATCH} ingest {shq(p)} --store /tmp/probe/s-repro"
                        + (f" --format {fmt}" if mode == "forced" else ""),
                    )


def check_sentinel(probe: Probe) -> None:
    """No store, report or log may hold what an external entity or XInclude would have read."""
    hits = []
    for p in (probe.work / "logs").glob("*"):
        if SENTINEL in p.read_text(errors="replace"):
            hits.append(p.name)
    for p in (probe.work / "reports").glob("*.json"):
        if SENTINEL in p.read_text(errors="replace"):
            hits.append(p.name)
    if hits:
        probe.find(
            "hostile-xml", "entities", f"an external entity / XInclude was expanded: the sentinel is in {hits[:5]}"
        )


# --- main -------------------------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, help="corpus folder (<format>/<files>); default: built from --sdists")
    ap.add_argument("--keep", type=Path, help="work folder to keep (stores, runs, logs); default: a temporary one")
    sdists = Path("/tmp/probe/sdists")  # noqa: S108 - where the downloads go (see the docstring)
    ap.add_argument("--sdists", type=Path, default=sdists, help="downloaded source distributions")
    ap.add_argument("--spawn", action="store_true", help="run every command as a real process (slower)")
    args = ap.parse_args()

    if args.keep:
        if args.keep.exists():
            shutil.rmtree(args.keep)
        args.keep.mkdir(parents=True)
        work = args.keep.resolve()
    else:
        work = Path(tempfile.mkdtemp(prefix="finwatch-probe-"))
    probe = Probe(work, args.spawn)
    probe.mounts = []  # type: ignore[attr-defined]
    try:
        return _main(probe, args, work)
    finally:
        for m in probe.mounts:  # type: ignore[attr-defined]
            subprocess.run(["umount", str(m)], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _main(probe: Probe, args: argparse.Namespace, work: Path) -> int:
    t0 = time.monotonic()
    # a small synthetic world (its exports feed hostile variants and the pipeline)
    world = work / "world"
    res = probe.run(
        ["synth", "--out", str(world), "--accounts", "500", "--days", "14", "--seed", "7"], "synth", timeout=300
    )
    probe.check_output(res, {0}, "synth", hostile_input=False)
    world_ok = res.rc == 0 and (world / "truth" / "transactions.parquet").is_file()

    sources: Counter[str] = Counter()
    if args.corpus:
        corpus = args.corpus.resolve()
    else:
        corpus = work / "corpus"
        corpus.mkdir()
        known = fixture_hashes()
        if args.sdists.is_dir() and any(args.sdists.iterdir()):
            sources = build_sdist_corpus(args.sdists, corpus, known)
        else:
            probe.notes.append(f"{args.sdists}: no source distributions; corpus from tests/fixtures variants only")
        made = make_hostile(corpus, world if world_ok else None, work)
        for fmt, n in sorted(made.items()):
            sources[f"hostile variants:{fmt}"] += n
    entries = corpus_entries(corpus)
    print(
        f"corpus {corpus}: {len(entries)} entries; "
        + ", ".join(f"{k} {v}" for k, v in sorted(Counter(f for f, _ in entries).items()))
    )
    for k, v in sorted(sources.items()):
        print(f"  source {k}: {v}")
    print(f"[{time.monotonic() - t0:5.0f} s] per-file ingest", flush=True)
    results = phase_per_file(probe, entries)
    check_hostile_xml(probe, results, entries)
    print(f"[{time.monotonic() - t0:5.0f} s] special cases", flush=True)
    phase_special(probe, entries, world if world_ok else None)
    if world_ok:
        print(f"[{time.monotonic() - t0:5.0f} s] pipeline", flush=True)
        phase_pipeline(probe, world, entries)
    print(f"[{time.monotonic() - t0:5.0f} s] console: hostile options, a real terminal", flush=True)
    store, models, live, as_of = getattr(probe, "pipeline", (None, work / "models", None, None))
    phase_console(probe, entries, store, models, live, as_of)
    print(f"[{time.monotonic() - t0:5.0f} s] cross-format batches", flush=True)
    phase_cross(probe, entries)
    check_sentinel(probe)
    print(f"[{time.monotonic() - t0:5.0f} s] confirming findings with real processes", flush=True)
    probe.confirm()
    (work / "per-file.json").write_text(json.dumps(results, indent=1, sort_keys=True, ensure_ascii=True))

    # ---- summary ----
    print()
    print("=" * 100)
    for f in probe.findings:
        print(f"[{f.kind}] {vis(f.where, 120)}: {vis(f.what, 500)}")
        if f.repro:
            print(f"    repro: {f.repro if not UNSAFE_OUT.search(f.repro) else vis(f.repro, 4000)}")
        if f.confirmed:
            print(f"    ({f.confirmed})")
    kinds = Counter(f.kind for f in probe.findings)
    print("=" * 100)
    for note in probe.notes:
        print(f"note: {note}")
    fmt_counts = ", ".join(f"{k} {v}" for k, v in sorted(probe.per_format.items()))
    print(
        f"files tried: {len(probe.files_tried)} ({fmt_counts}); finwatch runs: {probe.runs}; "
        f"time: {time.monotonic() - t0:.0f} s; mode: {'spawn' if probe.spawn else 'fork + real-process confirmation'}"
    )
    print(
        f"findings: {len(probe.findings)}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")" if kinds else "")
    )
    print(f"work folder: {work}" + ("" if args.keep else " (removed; use --keep DIR to keep it)"))
    return 1 if probe.findings else 0


if __name__ == "__main__":
    sys.exit(main())
