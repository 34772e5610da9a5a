"""The lab's sizing of the host neighbour table: needs add up, originals come back."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.lab.net import neightable
from netdoctor.lab.net.neightable import Thresholds


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A fake /proc/sys for the three thresholds, at the kernel's defaults."""
    values = {"net.ipv4.neigh.default.gc_thresh1": 128, "net.ipv4.neigh.default.gc_thresh2": 512,
              "net.ipv4.neigh.default.gc_thresh3": 1024}
    root = tmp_path / "proc"

    def path(key: str) -> Path:
        p = root / key
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{values[key]}\n")
        return p

    monkeypatch.setattr(neightable, "_path", path)
    return values


def _now() -> Thresholds:
    return neightable.read()


def test_small_lab_changes_nothing(host: dict[str, int], tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    change = neightable.reserve("a", tmp_path, 3, registry=reg)
    assert not change.changed
    assert change.message(3) == ""
    assert _now() == Thresholds(128, 512, 1024)
    assert neightable.release("a", registry=reg) is not None
    assert _now() == Thresholds(128, 512, 1024)


def test_big_lab_raises_and_restores(host: dict[str, int], tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    change = neightable.reserve("a", tmp_path, 100, registry=reg)
    need = neightable.needed_entries(100)
    assert need >= 100 * 99
    assert change.changed
    assert _now() == Thresholds(need // 4, need, 2 * need)
    assert "128/512/1024 -> " in change.message(100)
    back = neightable.release("a", registry=reg)
    assert back is not None
    assert back.changed
    assert _now() == Thresholds(128, 512, 1024)
    assert not (reg / "original.json").exists()


def test_two_labs_add_up_and_first_down_keeps_second(host: dict[str, int],
                                                     tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    neightable.reserve("a", a, 50, registry=reg)
    neightable.reserve("b", b, 50, registry=reg)
    both = 2 * neightable.needed_entries(50)
    assert _now().gc2 == both
    neightable.release("a", registry=reg)
    assert _now().gc2 == neightable.needed_entries(50)  # b still runs
    neightable.release("b", registry=reg)
    assert _now() == Thresholds(128, 512, 1024)


def test_lab_removed_without_down_is_forgotten(host: dict[str, int], tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    gone, live = tmp_path / "gone", tmp_path / "live"
    gone.mkdir()
    live.mkdir()
    neightable.reserve("gone", gone, 60, registry=reg)
    gone.rmdir()
    neightable.reserve("live", live, 40, registry=reg)
    assert _now().gc2 == neightable.needed_entries(40)


def test_higher_host_values_are_kept(host: dict[str, int], tmp_path: Path) -> None:
    host["net.ipv4.neigh.default.gc_thresh3"] = 10**6
    reg = tmp_path / "reg"
    neightable.reserve("a", tmp_path, 100, registry=reg)
    assert _now().gc3 == 10**6
    neightable.release("a", registry=reg)
    assert _now().gc3 == 10**6


def test_unwritable_host_says_what_is_needed(host: dict[str, int], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(values: Thresholds) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(neightable, "_write", refuse)
    change = neightable.reserve("a", tmp_path, 100, registry=tmp_path / "reg")
    assert not change.changed
    message = change.message(100)
    assert "could not be raised" in message
    assert "Permission denied" in message
    assert str(neightable.needed_entries(100)) in message
