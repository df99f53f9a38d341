"""The run configuration: precedence, presets, refusals and digests."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from finwatch._paths import reference_root
from finwatch.config import US_LAW, FeatureConfig, RunConfig, jurisdictions, load_config, parse_as_of, share
from finwatch.exceptions import ConfigError

PRESET_KEYS = {"threshold", "threshold_currency", "reportable_at_threshold", "aggregation_window", "home_country"}
LAW_KEYS = set(US_LAW)


def config_show(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FINWATCH_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "finwatch", "config", "show", "--json", *args], capture_output=True,
                          text=True, cwd=cwd, env=environ, timeout=120, check=False)  # fmt: skip


def test_config_show_reflects_file_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / "finwatch.toml").write_text(
        'jurisdiction = "ca"\n[features]\nthreshold = 15000\nnear_share = 0.7\n[score]\nbudget = 0.02\nreasons = 3\n'
    )
    env = {"FINWATCH_SCORE__BUDGET": "0.03", "FINWATCH_SCORE__REASONS": "4"}
    done = config_show("--jurisdiction", "au", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    config, sources = shown["config"], shown["sources"]
    assert config["jurisdiction"] == "au"  # the flag beats the file
    assert sources["jurisdiction"] == "command line (--jurisdiction)"
    assert config["features"]["threshold_currency"] == "AUD"  # from the preset the flag chose
    assert sources["features.threshold_currency"].startswith("jurisdiction au")
    assert config["features"]["threshold"] == "15000"  # the file beats the preset
    assert sources["features.threshold"].endswith("finwatch.toml")
    assert config["features"]["near_share"] == 0.7
    assert config["score"]["budget"] == 0.03  # the environment beats the file
    assert sources["score.budget"] == "environment FINWATCH_SCORE__BUDGET"
    assert config["score"]["reasons"] == 4
    assert sources["score.model"] == "default"
    assert shown["sha256"] == RunConfig.model_validate(config).digest()


def test_a_flag_beats_the_environment(tmp_path: Path) -> None:
    loaded = load_config(flags={"score.budget": 0.05}, environ={"FINWATCH_SCORE__BUDGET": "0.03"}, cwd=tmp_path)
    assert loaded.config.score.budget == 0.05
    assert loaded.sources["score.budget"] == "command line (--budget)"


def test_config_file_from_the_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[train]\nstep_hours = 24\n")
    loaded = load_config(environ={"FINWATCH_CONFIG": str(path)}, cwd=tmp_path)
    assert loaded.config.train.step_hours == 24
    assert loaded.sources["train.step_hours"] == str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[features]\nthreshhold = 15000\n",
                     r"bad\.toml: unknown configuration key 'features\.threshhold'", id="misspelt key"),
        pytest.param("[scoring]\nbudget = 0.1\n", r"bad\.toml: unknown configuration key 'scoring'",
                     id="unknown table"),
        pytest.param('[score]\nbudget = "lots"\n', r"bad\.toml: score\.budget: Input should be a valid number",
                     id="wrong type"),
        pytest.param("[score]\nbudget = 2\n", r"bad\.toml: score\.budget: Input should be less than 1",
                     id="out of range"),
        pytest.param('[features]\nw_24h = "a day"\n', r"bad\.toml: features\.w_24h", id="not a duration"),
        pytest.param("[features\n", r"bad\.toml: not valid TOML", id="broken TOML"),
        pytest.param('jurisdiction = "atlantis"\n',
                     r"bad\.toml: jurisdiction 'atlantis' is not known; presets: au, ca, eu",
                     id="unknown jurisdiction"),
    ],
)  # fmt: skip
def test_bad_configuration_files_are_refused_naming_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={}, cwd=tmp_path)


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment FINWATCH_SCORE__BUDGET: score\.budget"):
        load_config(environ={"FINWATCH_SCORE__BUDGET": "many"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"environment variable FINWATCH_SCORE__BUDGE: 'score\.budge'"):
        load_config(environ={"FINWATCH_SCORE__BUDGE": "0.1"}, cwd=tmp_path)


def test_the_cli_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "finwatch.toml").write_text("[features]\nthreshhold = 1\n")
    done = config_show(cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "finwatch.toml: unknown configuration key 'features.threshhold'; keys of [features]:" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("code", ["us", "ca", "au", "eu"])
def test_each_preset_sets_its_law_and_loads(code: str, tmp_path: Path) -> None:
    data = tomllib.loads(jurisdictions()[code].read_text(encoding="utf-8"))
    assert set(data["features"]) == PRESET_KEYS
    assert set(data["law"]) == LAW_KEYS
    features = load_config(flags={"jurisdiction": code}, environ={}, cwd=tmp_path).config.features
    assert features.threshold == Decimal(data["features"]["threshold"])
    assert features.threshold_currency == data["features"]["threshold_currency"]
    assert features.law == {k: str(v) for k, v in data["law"].items()}


@pytest.mark.parametrize(
    ("code", "currency", "at_threshold", "window", "home"),
    [
        pytest.param("us", "USD", False, None, "US", id="US: more than $10,000 in one business day"),
        pytest.param("ca", "CAD", True, dt.timedelta(hours=24), "CA", id="Canada: $10,000 or more, 24-hour rule"),
        pytest.param("au", "AUD", True, None, "AU", id="Australia: $10,000 or more, no aggregation"),
        pytest.param("eu", "EUR", False, None, "US", id="EU: cash only up to EUR 10,000, member state left to you"),
    ],
)  # fmt: skip
def test_preset_values(
    code: str, currency: str, at_threshold: bool, window: dt.timedelta | None, home: str, tmp_path: Path
) -> None:
    features = load_config(flags={"jurisdiction": code}, environ={}, cwd=tmp_path).config.features
    assert (features.threshold, features.threshold_currency) == (Decimal(10_000), currency)
    assert features.reportable_at_threshold is at_threshold
    assert features.aggregation_window == window
    assert features.home_country == home


def test_the_preset_folder_documents_every_preset() -> None:
    readme = (reference_root() / "jurisdictions" / "README.md").read_text(encoding="utf-8")
    assert all(f"| `{code}` |" in readme for code in jurisdictions())


def test_durations_read_as_analysts_write_them() -> None:
    config = FeatureConfig.model_validate({"w_24h": "24h", "w_5d": "5d", "cycle_window": "1d12h", "w_cashout": 3600})
    assert config.w_24h == dt.timedelta(hours=24)
    assert config.w_5d == dt.timedelta(days=5)
    assert config.cycle_window == dt.timedelta(days=1, hours=12)
    assert config.w_cashout == dt.timedelta(hours=1)
    assert FeatureConfig.model_validate({"aggregation_window": "day"}).aggregation_window is None


def test_digest_names_the_values_not_the_object() -> None:
    assert RunConfig().digest() == RunConfig().digest()
    assert RunConfig().updated({"score.budget": 0.02}).digest() != RunConfig().digest()
    assert RunConfig().updated({"features.threshold": 15000}).features.threshold == Decimal(15000)


def test_updated_validates() -> None:
    with pytest.raises(ValueError, match="budget"):
        RunConfig().updated({"score.budget": 7})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-02-01", dt.datetime(2026, 2, 1, tzinfo=dt.UTC), id="bare date is midnight UTC"),
        pytest.param("2026-02-01T10:00:00Z", dt.datetime(2026, 2, 1, 10, tzinfo=dt.UTC), id="Z suffix"),
        pytest.param("2026-02-01T10:00:00+01:00", dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC), id="offset to UTC"),
    ],
)
def test_as_of_is_parsed_once_everywhere(text: str, expected: dt.datetime) -> None:
    assert parse_as_of(text) == expected


def test_shares() -> None:
    assert share("1%", "--budget") == 0.01
    assert share("0.07", "--budget") == 0.07
    with pytest.raises(ConfigError, match="--budget: '100%' must be more than 0 % and less than 100 %"):
        share("100%", "--budget")


def test_paths_in_a_configuration_file_are_relative_to_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "finwatch.toml").write_text('models = "registry"\n[ingest]\nfx = "rates/fx.csv"\n'
                                          '[export]\ngoaml_xsd = "/abs/goaml.xsd"\n')  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = load_config(folder / "finwatch.toml", environ={}, cwd=elsewhere).config
    assert config.models == folder / "registry"
    assert config.ingest.fx == folder / "rates" / "fx.csv"
    assert config.export.goaml_xsd == Path("/abs/goaml.xsd")
    flagged = load_config(folder / "finwatch.toml", {"models": Path("mine")}, environ={}, cwd=elsewhere).config
    assert flagged.models == Path("mine")  # a flag is the user's own path, as typed
