"""health.json: saved atomically as plain JSON, read back on start; a healthy file is
never moved aside, an unreadable one is (and only a few of those are kept)."""

from __future__ import annotations

import json
from pathlib import Path

from core.health.config import CheckSpec
from core.health.damping import Damper
from core.health.monitor import CheckState, HealthMonitor
from core.store.storage import KEEP_CORRUPT, quarantine


def monitor(path: Path) -> HealthMonitor:
    mon = HealthMonitor({})
    spec = CheckSpec("system", "metrics", targets="web01")
    st = CheckState(spec, "web01", Damper(spec.fail, spec.recover))
    mon.states[st.key] = st
    mon._path = path  # noqa: SLF001 - where start() would put it
    return mon


def test_a_hundred_saves_leave_no_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    mon = monitor(path)
    (st,) = mon.states.values()
    for i in range(100):
        st.history.append((1_000.0 + i, "ok", float(i)))
        mon._save_history()  # noqa: SLF001
    assert sorted(p.name for p in tmp_path.iterdir()) == ["health.json"]
    again = monitor(path)
    again._load_history()  # noqa: SLF001
    (st2,) = again.states.values()
    assert list(st2.history)[-1] == (1_099.0, "ok", 99.0)
    assert json.loads(path.read_text())["history"][st.key][0] == [1_000.0, "ok", 0.0]
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_unreadable_file_is_kept_aside_once_and_the_trends_start_empty(tmp_path) -> None:
    path = tmp_path / "health.json"
    path.write_text("{not json")
    mon = monitor(path)
    mon._load_history()  # noqa: SLF001
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("health.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == "{not json"
    assert not path.exists() and list(next(iter(mon.states.values())).history) == []
    mon._save_history()  # noqa: SLF001
    monitor(path)._load_history()  # noqa: SLF001 - the new file is fine: nothing moves
    assert len([p for p in tmp_path.iterdir() if ".corrupt-" in p.name]) == 1


def test_only_the_newest_unreadable_files_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for i in range(KEEP_CORRUPT + 4):
        path.write_text(f"bad {i}")
        quarantine(path, "test")
    kept = sorted(p.read_text() for p in tmp_path.iterdir())
    assert len(kept) == KEEP_CORRUPT
    assert f"bad {KEEP_CORRUPT + 3}" in kept and "bad 0" not in kept
