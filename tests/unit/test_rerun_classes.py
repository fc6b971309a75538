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


def test_a_host_result_as_a_dict_is_a_full_copy() -> None:
    """HostResult.to_dict copies shallowly (it is published on every host's change):
    that equals asdict only while every field is a scalar."""
    from dataclasses import asdict, fields

    from core.remote.results import HostResult

    r = HostResult("web01", state="failed", exit_code=2, reason="x", batch=1, changed=False)
    assert r.to_dict() == {**asdict(r), "duration": None}
    scalars = {"str", "int", "float", "bool", "None"}
    for f in fields(HostResult):
        kinds = {k.strip() for k in str(f.type).split("|")}
        assert kinds <= scalars, f"{f.name}: {f.type} is not a scalar; to_dict must copy it"
