"""`check-config` on workflows: every mistake one line with its file, line and key; a
cycle named by its path. The graph helpers (cycle, order) against small graphs."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.fleetconfig import check_config, parse_config_text
from core.workflows.spec import find_cycle, topological

HEAD = '[jobs.build]\ncommand = "make"\n\n[workflows.deploy]\n'


def _issues(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "fleet.toml"
    path.write_text(HEAD + text)
    return [str(i) for i in check_config(path)]


def _steps(*steps: str) -> str:
    return "".join(f"[[workflows.deploy.steps]]\n{s}\n" for s in steps)


def test_a_cycle_is_named_by_its_path_with_its_line(tmp_path: Path) -> None:
    got = _issues(tmp_path, _steps('name = "a"\ncommand = "true"\nneeds = ["c"]',
                                   'name = "b"\ncommand = "true"\nneeds = ["a"]',
                                   'name = "c"\ncommand = "true"\nneeds = ["b"]'))
    assert got == [f"{tmp_path}/fleet.toml:8: workflows.deploy.steps[0].needs: the steps' "
                   "needs form a cycle: a -> c -> b -> a"]


@pytest.mark.parametrize(("steps", "line", "message"), [
    (('name = "a"\ncommand = "true"', 'name = "b"\ncommand = "true"\nneeds = ["nope"]'),
     11, "workflows.deploy.steps[1].needs: step 'b' needs 'nope', which is no step of this "
         "workflow"),
    (('name = "a"\njob = "biuld"',), 7, "workflows.deploy.steps[0].job: step 'a' runs job "
     "'biuld', which is not configured"),
    (('name = "a"\ntargets = "local"',), 5, "workflows.deploy.steps[0]: step 'a' has "
     "neither `job` nor `command` (nor `push`)"),
    (('name = "a"\ncommand = "true"', 'name = "a"\ncommand = "false"'), 9,
     "workflows.deploy.steps[1].name: duplicate step name 'a': steps[0] has it too"),
    (('name = "a"\ncommand = "true"\napprove = { by = [] }',), 8,
     "workflows.deploy.steps[0].approve.by: an approval gate must name who approves: "
     'by = ["alice", "@oncall"]'),
    (('name = "a"\ncommand = "true"\nneeds = ["a"]',), 8,
     "workflows.deploy.steps[0].needs: step 'a' needs itself"),
    (('name = "a"\ncommand = "true"\nwhen = "sometimes"',), 8,
     "workflows.deploy.steps[0].when: when must be one of success, failure, always, "
     "got 'sometimes'"),
    (('name = "a"\ncommand = "true"\njob = "build"',), 7,
     "workflows.deploy.steps[0].command: step 'a' has both `job` and `command`; give one"),
])
def test_each_mistake_is_one_line_with_where(tmp_path: Path, steps: tuple[str, ...],
                                             line: int, message: str) -> None:
    assert _issues(tmp_path, _steps(*steps)) == [f"{tmp_path}/fleet.toml:{line}: {message}"]


def test_a_workflow_without_steps_and_one_named_like_a_job(tmp_path: Path) -> None:
    got = _issues(tmp_path, 'description = "x"\n\n[workflows.build]\n'
                  + _steps('name = "a"\ncommand = "true"').replace("deploy", "build"))
    assert got == [
        f"{tmp_path}/fleet.toml:4: workflows.deploy: a workflow needs steps: "
        "[[workflows.deploy.steps]] tables",
        f"{tmp_path}/fleet.toml:7: workflows.build: a job is named 'build' too; workflows "
        "and jobs share one namespace"]


def test_a_remediation_must_name_a_workflow(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text('[checks.web]\nkind = "tcp"\nport = 80\nremediation = "restrat"\n\n'
                    '[workflows.restart]\n[[workflows.restart.steps]]\nname = "a"\n'
                    'command = "true"\n')
    assert [str(i) for i in check_config(path)] == [
        f"{path}:4: checks.web.remediation: remediation 'restrat' is no configured "
        "workflow (did you mean 'restart'?)"]


def test_a_good_workflow_reads_into_a_job_with_its_spec() -> None:
    cfg = parse_config_text(HEAD + 'schedule = "0 3 * * *"\n' + _steps(
        'name = "drain"\ncommand = "true"',
        'name = "ship"\njob = "build"\nneeds = ["drain"]\ntimeout = "5m"\n'
        'approve = { by = ["alice", "@oncall"], timeout = "30m" }',
        'name = "undo"\ncommand = "true"\nneeds = ["ship"]\nwhen = "failure"'))
    job = cfg.jobs["deploy"]
    spec = job.workflow
    assert job.schedule == "0 3 * * *" and job.timeout is None
    assert spec.order == ("drain", "ship", "undo")
    ship = spec.step("ship")
    assert (ship.job, ship.timeout, ship.approve.by, ship.approve.timeout) == (
        "build", 300.0, ("alice", "@oncall"), 1800.0)
    assert spec.ancestors("undo") == ["drain", "ship"]


def test_find_cycle_and_order() -> None:
    assert find_cycle({"a": (), "b": ("a",), "c": ("a", "b")}) is None
    assert find_cycle({"a": ("b",), "b": ("a",)}) == ["a", "b", "a"]
    assert find_cycle({"x": (), "a": ("b",), "b": ("c",), "c": ("b",)}) == ["b", "c", "b"]
    assert topological({"d": ("b", "c"), "c": ("a",), "b": ("a",), "a": ()}) == (
        "a", "c", "b", "d")
    wide = {f"s{i}": () for i in range(1000)} | {"end": tuple(f"s{i}" for i in range(1000))}
    assert topological(wide)[-1] == "end"
    deep = {f"s{i}": ((f"s{i - 1}",) if i else ()) for i in range(3000)}
    assert find_cycle(deep) is None and topological(deep)[0] == "s0"
