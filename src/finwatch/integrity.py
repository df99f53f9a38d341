"""Verifying a model version and a run against everything they depend on.

- :func:`verify_model`: a registry version's metadata, file checksums, version digest, signature and scorer
  (:meth:`finwatch.registry.Registry.check`).
- :func:`verify_run`: a run folder's run.json (readable, its run id recomputed from what it records, its signature),
  its lead files against the sha256 run.json records, the leads against run.json (run id, model digest, data
  manifest), the model version it names (verified as above, and its digest equal to the run's), and the store: every
  batch the run names present, the data manifest hash of those batches equal to the run's, their files intact.

Both return a :class:`finwatch.digest.Verification`: every check passed or failed with its reason. A reference that
does not resolve or a folder that is not a run raises a :class:`finwatch.exceptions.FinwatchError` instead. See
docs/security.md for what these checks do and do not protect against.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import polars as pl

from finwatch._io import sha256_file
from finwatch.digest import Check, Verification, key_id, signature_problem
from finwatch.exceptions import FinwatchError, StoreError
from finwatch.registry import Registry
from finwatch.runs import FIXED_FILES, LEAD_FILES, LEADS_FILE, RUN_FILE, RunFolder, read_leads, run_id_for, run_manifest
from finwatch.store import Store

__all__ = ["verify_model", "verify_run"]


def verify_model(registry: Registry, ref: str, key: bytes | None = None) -> Verification:
    """Every check of the version ``ref`` names (with ``key``, else the registry's key, its signature too)."""
    found = registry.check(ref, key)
    intact = found.digest is not None and all(c.ok for c in found.checks)
    subject = f"{found.name}@{found.version}" + (f" (digest {found.digest})" if intact else "")
    return Verification(subject, tuple(found.checks))


def verify_run(
    run_dir: Path, registry: Registry, store: Store | Path | None = None, key: bytes | None = None
) -> Verification:
    """Every check of the run in ``run_dir`` and what it depends on (see the module).

    ``store``: the store the run was scored on when it moved (default: the path run.json records). ``key``: the
    signing key (default: the registry's); without one, signatures are not checked.
    """
    run = RunFolder(Path(run_dir))
    info = run.info  # refuses a folder that is not a run
    key = key if key is not None else registry.key
    checks = [_run_id(info), _run_signature(run, info, key)]
    checks += _lead_files(run, info)
    checks.append(_leads_agree(run, info))
    checks += _model(registry, info, key)
    checks += _store(run, info, store)
    return Verification(f"run {info.get('run_id')} ({run.path})", tuple(checks))


def _run_id(info: dict[str, Any]) -> Check:
    try:
        digest = info.get("scoring_digest") or info["model_sha256"]  # runs before digests: the trees' sha256
        expected = run_id_for(info["data_manifest_sha256"], info["model"], digest, info["rules_version"],
                              info["as_of"], info["budget"], info["feature_config_sha256"])  # fmt: skip
    except (KeyError, TypeError) as exc:
        return Check("run id", False, f"run.json lacks {exc} to recompute the run id")
    if expected != info.get("run_id"):
        return Check("run id", False, f"run.json says {info.get('run_id')}, what it records gives {expected}")
    return Check("run id", True, f"{expected}: data, model, rules, time, budget and settings agree")


def _run_signature(run: RunFolder, info: dict[str, Any], key: bytes | None) -> Check:
    signature = info.get("signature")
    if key is None:
        return Check("run signature", True, "present, not checked (no key configured)" if signature else "not signed")
    problem = signature_problem(key, "run", run_manifest(info), signature)
    if problem is not None:
        return Check("run signature", False, f"{run.path / RUN_FILE}: {problem}")
    return Check("run signature", True, f"valid (key {key_id(key)})")


def _lead_files(run: RunFolder, info: dict[str, Any]) -> list[Check]:
    files = info.get("files")
    if not isinstance(files, dict):
        return [Check("lead files", False, f"{run.path / RUN_FILE}: records no file hashes (written before they were)")]
    checks = []
    for name in LEAD_FILES:
        path = run.path / name
        entry = files.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            checks.append(Check(name, False, f"{run.path / RUN_FILE}: records no sha256 of {name}"))
            continue
        if not path.is_file():
            checks.append(Check(name, False, f"{path}: missing"))
            continue
        actual = sha256_file(path)
        if hmac.compare_digest(actual, entry["sha256"]):
            checks.append(Check(name, True, f"sha256 {actual[:16]}… as recorded"))
        elif name not in FIXED_FILES and _csv_as_exported(run, path):
            checks.append(Check(name, True, "rewritten by an export; matches the leads and the exported drafts"))
        else:
            checks.append(Check(name, False, f"{path}: sha256 {actual[:16]}… differs from the recorded "
                                f"{entry['sha256'][:16]}…; changed after the run"))  # fmt: skip
    return checks


def _csv_as_exported(run: RunFolder, path: Path) -> bool:
    """Whether leads.csv is what an export rewrites it to from the run's leads (and the drafts beside them)."""
    from finwatch.runs import _drafts, _flat

    try:
        return bool(path.read_bytes() == _flat(_drafts(run.path, run.leads())).write_csv().encode("utf-8"))
    except (OSError, pl.exceptions.PolarsError, FinwatchError, ValueError):
        return False


def _leads_agree(run: RunFolder, info: dict[str, Any]) -> Check:
    """The leads name the run's id, model digest and data manifest, and there are as many as run.json says."""
    try:
        leads = read_leads(run.path / LEADS_FILE)
    except FinwatchError as exc:
        return Check("leads", False, str(exc))
    expected = {"run_id": info.get("run_id"), "data_manifest_sha256": info.get("data_manifest_sha256")}
    if "scoring_digest" in info:
        expected["scoring_digest"] = info["scoring_digest"]
    for column, value in expected.items():
        if column not in leads.columns:
            return Check("leads", False, f"{run.path / LEADS_FILE}: no {column} column")
        other = sorted({str(v) for v in leads[column].to_list() if v != value})
        if other:
            return Check("leads", False, f"{run.path / LEADS_FILE}: {column} {other[0]} is not the run's {value}")
    if leads.height != info.get("leads"):
        return Check(
            "leads", False, f"{run.path / LEADS_FILE}: {leads.height} leads, run.json says {info.get('leads')}"
        )
    return Check("leads", True, f"{leads.height} leads of this run, scored with its model on its data")


def _model(registry: Registry, info: dict[str, Any], key: bytes | None) -> list[Check]:
    ref = str(info.get("model"))
    try:
        found = registry.check(ref, key)
    except FinwatchError as exc:
        return [Check("model", False, f"{ref}: {exc}")]
    checks = [Check(f"model {c.name}", c.ok, c.detail) for c in found.checks]
    folder = registry.root / found.name / str(found.version)
    for field, current in (("model_digest", found.digest), ("scoring_digest", found.scoring_digest)):
        recorded = info.get(field)
        if recorded is None:
            detail = f"{RUN_FILE} records no {field} (written before digests were recorded)"
            checks.append(Check(field.replace("_", " "), False, detail))
        elif current != recorded:
            detail = f"{folder}: {field} {current} is not the run's {recorded}; the model changed after the run"
            checks.append(Check(field.replace("_", " "), False, detail))
        else:
            checks.append(
                Check(field.replace("_", " "), True, f"{found.name}@{found.version} has the run's {recorded}")
            )
    return checks


class _Batches(Store):
    """A store seen through the batches a run names: its manifests, data manifest hash and checks cover only those."""

    def __init__(self, root: Path, batches: set[str]) -> None:
        super().__init__(root)
        self._only = batches

    def manifests(self) -> list[dict[str, Any]]:
        return [m for m in super().manifests() if str(m["batch"]) in self._only]


def _store(run: RunFolder, info: dict[str, Any], given: Store | Path | None) -> list[Check]:
    try:
        store = run.store(given.root if isinstance(given, Store) else given)
    except (StoreError, FinwatchError) as exc:
        return [Check("store", False, str(exc))]
    batches = {str(b) for b in info.get("store_batches", [])}
    seen = _Batches(store.root, batches)
    manifest = seen.manifest_sha256()
    checks = [Check("store", True, f"{store.root} holds the {len(batches)} batch(es) the run names")]
    if manifest != info.get("data_manifest_sha256"):
        checks.append(Check("data manifest", False, f"{store.root}: the run's batches hash to {manifest}, not the "
                            f"run's {info.get('data_manifest_sha256')}; the stored data changed"))  # fmt: skip
    else:
        checks.append(Check("data manifest", True, f"sha256 {manifest} as recorded"))
    problems = seen.verify()
    detail = "; ".join(problems[:3]) + ("…" if len(problems) > 3 else "") if problems else "every file as listed"
    checks.append(Check("store files", not problems, f"{store.root}: {detail}"))
    return checks
