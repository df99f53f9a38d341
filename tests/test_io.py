"""Atomic folder publication: a failed or killed write never looks complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from finwatch._io import atomic_directory


def test_failure_inside_leaves_the_previous_content(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target, marker="done.json") as staging:
        (staging / "done.json").write_text("1")

    def interrupted_write() -> None:
        with atomic_directory(target, marker="done.json") as staging:
            (staging / "done.json").write_text("2")
            raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError, match="killed half way"):
        interrupted_write()
    assert (target / "done.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staging_is_invisible_until_published(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target, marker="done.json") as staging:
        (staging / "part.csv").write_text("a,b\n")
        assert not target.exists()
        assert staging.parent == tmp_path
        assert staging.name.startswith(".out.partial-")
    assert (target / "part.csv").exists()
