"""Rolling batches as Ansible's `serial` cuts them, and the failures that stop them."""

from __future__ import annotations

import pytest

from core.remote.rollout import Rollout, RolloutError, failures, make_rollout, parse_serial

HOSTS = [f"h{i:02d}" for i in range(1, 13)]


def sizes(serial: str, n: int = 12) -> list[int]:
    return [len(b) for b in make_rollout(serial).batches(HOSTS[:n])]


def test_serial_sizes_counts_shares_and_lists():
    assert sizes("2") == [2] * 6
    assert sizes("5") == [5, 5, 2]
    assert sizes("25%") == [3, 3, 3, 3]
    assert sizes("1,25%") == [1, 3, 3, 3, 2]  # a canary, then a quarter at a time
    assert sizes("1,5,25%") == [1, 5, 3, 3]
    assert sizes("1%") == [1] * 12  # a share rounds down, but never to nothing
    assert sizes("100") == [12]
    assert sizes("50%", 3) == [1, 1, 1]
    # batches keep the order given, and every host is in exactly one
    batches = make_rollout("1,5").batches(HOSTS)
    assert [h for b in batches for h in b] == HOSTS
    assert Rollout().batches(HOSTS) == [HOSTS] and Rollout().batches([]) == []


def test_max_fail_counts_and_shares_round_up():
    assert make_rollout("2", max_fail="1").fail_limit(12) == 1
    assert make_rollout("2", max_fail="10%").fail_limit(12) == 2
    assert make_rollout("2", max_fail="1%").fail_limit(12) == 1
    assert make_rollout("2", max_fail="100%").fail_limit(12) == 12
    assert make_rollout("2").fail_limit(12) is None


def test_what_counts_as_a_failure():
    assert failures(["ok", "cancelled", "skipped", "running", "pending"]) == 0
    assert failures(["failed", "timed_out", "unreachable", "auth_failed",
                     "host_key_changed"]) == 5


@pytest.mark.parametrize(("serial", "max_fail", "pause", "message"), [
    ("0", None, None, "serial: 0 must be at least 1"),
    ("0%", None, None, "serial: 0% must be at least 1%"),
    ("150%", None, None, "serial: 150% is more than 100%"),
    ("1,,2", None, None, "serial: an empty batch size; write sizes like 1,5,25%"),
    ("two", None, None, "serial: 'two' is not a number of hosts or a percentage"),
    ("-1", None, None, "serial: '-1' is not a number of hosts or a percentage"),
    ("１", None, None, "serial: '１' is not a number of hosts or a percentage"),
    ("1", "150%", None, "max-fail: 150% is more than 100%"),
    ("1", "0", None, "max-fail: 0 must be at least 1"),
    ("1", None, "soon", "pause-between: bad duration"),
    ("1", None, "2d", "pause-between: more than a day"),
    # an empty value (an unset $SERIAL in a script) is no "every host at once"
    ("", None, None, "serial: an empty batch size"),
    ("2", "", None, "max-fail: '' is not a number of hosts"),
    ("2", None, "", "pause-between: "),
    # what max-fail and a pause act on is batches
    (None, "1", None, "max-fail: needs serial too"),
    (None, None, "30s", "pause-between: needs serial too"),
    ([[1]], None, None, "serial: '[1]' is not a number of hosts"),
    ([True], None, None, "serial: 'true' is not a number of hosts"),
])
def test_bad_values_are_one_line_errors(serial, max_fail, pause, message):
    with pytest.raises(RolloutError) as e:
        make_rollout(serial, max_fail, pause)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_a_rollout_recorded_reads_back_the_same():
    r = make_rollout("1,25%", "10%", "30s")
    assert r.to_dict() == {"serial": "1,25%", "max_fail": "10%", "pause_between": 30.0}
    assert Rollout.from_dict(r.to_dict()) == r and r.has_canary and r.rolling
    assert Rollout.from_dict(None) == Rollout() and not Rollout().rolling
    assert parse_serial([1, "25%"]) == parse_serial("1,25%")
    assert not make_rollout("3").has_canary


def test_a_rollout_stops_at_max_fail_or_a_batch_that_failed_whole():
    """max-fail counts over the rollout; a batch whose every host failed stops it too,
    as Ansible's serial does (a failed canary goes no further)."""
    from core.remote.rollout import stop_reason

    r = make_rollout("1,25%", "3")
    go = {"limit": r.fail_limit(12), "batches": 5}
    assert stop_reason(r, failed=1, batch=1, batch_failed=1, batch_size=1, **go) == \
        "the host of batch 1 of 5 failed"
    assert stop_reason(r, failed=2, batch=2, batch_failed=2, batch_size=3, **go) is None
    assert stop_reason(r, failed=3, batch=3, batch_failed=1, batch_size=3, **go) == \
        "3 hosts failed by batch 3 of 5 (max-fail 3)"
    assert stop_reason(r, failed=5, batch=4, batch_failed=3, batch_size=3, **go) == \
        "5 hosts failed by batch 4 of 5 (max-fail 3)"
    assert stop_reason(make_rollout("3"), failed=3, limit=None, batch=2, batches=4,
                       batch_failed=3, batch_size=3) == "the 3 hosts of batch 2 of 4 failed"
    # the last batch stops nothing: there is nothing after it
    assert stop_reason(r, failed=9, batch=5, batch_failed=2, batch_size=2, **go) is None


def test_a_rollout_recorded_with_max_fail_alone_reads_as_none():
    """Before max-fail needed serial, a fan-out could record it alone (one batch, which
    it never stopped): such a record still reads."""
    assert Rollout.from_dict({"serial": None, "max_fail": "1", "pause_between": 0}) == \
        Rollout()
