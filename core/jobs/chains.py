"""The simple chain: `after = ["job"]` on a job runs it when a run of that job succeeds,
`after_failure` when one fails or times out. An occurrence on several hosts is one
result (the worst of its hosts'), told once its last run has ended. A workflow is the
tool for more than a chain (core/workflows/)."""

from __future__ import annotations

import logging

from core.jobs.active import ActiveRun, EngineError
from core.jobs.runs import RunState, Trigger, worst_state

log = logging.getLogger("fleetdeck.engine")

_BAD = (RunState.FAILED.value, RunState.TIMED_OUT.value)


class Chains:
    """The engine's half (a mixin): a finished occurrence runs the jobs chained to it."""

    def _followers(self, job: str) -> list[tuple[str, str]]:
        config = self.config
        if getattr(self, "_chains_of", None) is not config:
            self._chains_of = config
            self._chains: dict[str, list[tuple[str, str]]] = {}
            for name, j in config.jobs.items():
                for other in j.after:
                    self._chains.setdefault(other, []).append((name, "after"))
                for other in j.after_failure:
                    self._chains.setdefault(other, []).append((name, "after_failure"))
        return self._chains.get(job, [])

    def _chain(self, act: ActiveRun) -> None:
        """A run ended: if it was the last of its occurrence, run what follows it."""
        run = act.run
        if run.parent is not None or not self._started or self._stopping:
            return  # a workflow's step is the workflow's business
        followers = self._followers(run.job)
        if not followers:
            return
        batch = run.occurrence if run.occurrence is not None else run.queued_at
        if any((a.run.occurrence if a.run.occurrence is not None else a.run.queued_at)
               == batch for a in self._active_by_job.get(run.job, {}).values()):
            return  # its other hosts' runs have not ended
        last = self.store.job_state_view(run.job).get("last_run") or {}
        hosts = (last.get("hosts") or {}) if last.get("batch") == batch else {}
        state = worst_state(hosts.values()) if hosts else run.state
        for name, kind in followers:
            if (kind == "after" and state == RunState.SUCCEEDED.value) or (
                    kind == "after_failure" and state in _BAD):
                self._spawn(self._follow(name, kind, run.job, run.id, state))

    async def _follow(self, name: str, kind: str, job: str, run_id: int, state: str) -> None:
        env = {"FLEETDECK_AFTER_JOB": job, "FLEETDECK_AFTER_RUN_ID": str(run_id),
               "FLEETDECK_AFTER_STATE": state}
        try:
            runs = await self.run_job(name, trigger=Trigger.AFTER, env=env,
                                      requested_by=f"{kind} {job} #{run_id}")
        except EngineError as e:
            self._notice("error", f"job {name} ({kind} {job} #{run_id}): {e}", name)
            return
        log.info("job %s started (%s %s #%d %s): %s", name, kind, job, run_id, state,
                 ", ".join(f"#{r['id']}" for r in runs), extra={"job": name})
