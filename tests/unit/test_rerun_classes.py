"""What a fan-out rerun's selectors name: `not_ok` leaves the host-key classes to a
person; `all` is every class; names keep report order; an unknown one is an error."""

from __future__ import annotations

import pytest

from core.remote.classes import HOST_CLASSES, select_classes


def test_not_ok_is_every_class_a_rerun_may_fix() -> None:
    assert select_classes(["not_ok"]) == (
        "failed", "timed_out", "unreachable", "auth_failed", "become_failed", "cancelled",
        "skipped")


def test_all_names_and_mixes() -> None:
    assert select_classes(["all"]) == HOST_CLASSES
    assert select_classes(["host_key_unknown", "not_ok"])[-3:] == (
        "host_key_unknown", "cancelled", "skipped")
    assert select_classes(["timed_out", "failed"]) == ("failed", "timed_out")


def test_unknown_selector() -> None:
    with pytest.raises(ValueError, match="unknown class 'weird'; one of ok, .* not_ok, all"):
        select_classes(["weird"])
