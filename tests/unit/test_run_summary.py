"""A job's last result over several hosts: the worst state, and how many hosts had it."""

from core.jobs.runs import last_run_summary, worst_state


def test_the_worst_state_wins():
    assert worst_state(["succeeded", "failed", "succeeded"]) == "failed"
    assert worst_state(["succeeded", "timed_out", "cancelled"]) == "timed_out"
    assert worst_state(["succeeded", "running"]) == "running"
    assert worst_state(["succeeded"]) == "succeeded"


def test_a_summary_says_how_many_hosts():
    assert last_run_summary(None) == "-"
    assert last_run_summary({"state": "failed"}) == "failed"  # a record before hosts
    one = {"state": "failed", "hosts": {"local": "failed"}}
    assert last_run_summary(one) == "failed"
    three = {"state": "failed", "hosts": {"a": "succeeded", "b": "failed", "c": "succeeded"}}
    assert last_run_summary(three) == "1/3 failed"
    alike = {"state": "failed", "hosts": {"a": "failed", "b": "failed"}}
    assert last_run_summary(alike) == "failed"
