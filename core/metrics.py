"""Prometheus metrics of a daemon (`fleetdeck daemon --metrics 127.0.0.1:9464`).

Exposition is prometheus_client's own. Every value is updated on the engine's loop from
its events (never read across threads from the HTTP server's): runs by job and final
state, run durations, the queue depth, fan-out hosts by class, check states, alerts by
status, and the notifier outbox depth.
"""

from __future__ import annotations

import logging
from typing import Any

from core.remote.classes import HOST_CLASSES

log = logging.getLogger("fleetdeck.metrics")

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400)
FINAL_HOST = HOST_CLASSES


class Metrics:
    def __init__(self, engine: Any) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.engine = engine
        self.registry = r = CollectorRegistry()
        self.runs = Counter("fleetdeck_runs", "Runs that reached a final state",
                            ["job", "state"], registry=r)
        self.duration = Histogram("fleetdeck_run_duration_seconds", "Run durations",
                                  ["job"], buckets=DURATION_BUCKETS, registry=r)
        self.queue = Gauge("fleetdeck_queue_depth", "Runs queued or running", ["state"],
                           registry=r)
        self.hosts = Counter("fleetdeck_fanout_hosts", "Fan-out hosts by final class",
                             ["class"], registry=r)
        self.checks = Gauge("fleetdeck_check_state", "1 for the state each check is in",
                            ["check", "target", "state"], registry=r)
        self.alerts = Gauge("fleetdeck_alerts", "Open alerts by status", ["status"],
                            registry=r)
        self.outbox = Gauge("fleetdeck_notifier_outbox_depth",
                            "Notifications waiting to be delivered", registry=r)
        self._check_state: dict[tuple[str, str], str] = {}
        self._server: Any = None
        cluster = getattr(engine, "cluster", None)
        if cluster is not None:  # read at each scrape: this node's view of the cluster
            from prometheus_client import Info

            Info("fleetdeck_cluster_node", "This node of the cluster",
                 registry=r).info({"node": cluster.node})
            Gauge("fleetdeck_cluster_leader", "1 while this node holds the leader's lease",
                  registry=r).set_function(lambda: 1.0 if cluster.lead else 0.0)
            Gauge("fleetdeck_cluster_term", "The term of this node's lease (0: not leader)",
                  registry=r).set_function(lambda: float(cluster.lead.term)
                                           if cluster.lead else 0.0)
            Gauge("fleetdeck_cluster_redis_connected", "1 while Redis answers this node",
                  registry=r).set_function(lambda: 1.0 if cluster.connected else 0.0)
            Gauge("fleetdeck_cluster_running", "Runs executing on this node",
                  registry=r).set_function(lambda: float(engine._running))
            Gauge("fleetdeck_cluster_work", "Runs and fan-out batches of the shared work "
                  "held by this node", registry=r).set_function(
                lambda: float(cluster.worker.load) if cluster.worker else 0.0)
            Gauge("fleetdeck_cluster_capacity", "This node's capacity for the shared work",
                  registry=r).set_function(
                lambda: float(cluster.worker.capacity) if cluster.worker else 0.0)
            Gauge("fleetdeck_cluster_taken_over", "Work entries this node took over from "
                  "workers that stopped answering", registry=r).set_function(
                lambda: float(cluster.worker.taken_over) if cluster.worker else 0.0)
            Gauge("fleetdeck_cluster_copied_runs", "Other nodes' runs copied into this "
                  "history", registry=r).set_function(
                lambda: float(cluster.mirror.copied) if cluster.mirror else 0.0)

    def serve(self, address: str) -> tuple[str, int]:
        """Start the HTTP endpoint on `host:port` (a thread of prometheus_client's)."""
        from prometheus_client import start_http_server

        host, _, port = address.rpartition(":")
        self._server, _thread = start_http_server(int(port), addr=host or "127.0.0.1",
                                                  registry=self.registry)
        self.engine.bus.subscribe(self.on_event)
        self._queue_depth()
        return host or "127.0.0.1", self._server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def on_event(self, event: Any) -> None:
        kind = event.kind
        if kind == "run_finished":
            run = event.run
            self.runs.labels(run["job"], run["state"]).inc()
            if run.get("started_at") and run.get("finished_at"):
                self.duration.labels(run["job"]).observe(
                    max(0.0, run["finished_at"] - run["started_at"]))
            self._queue_depth()
        elif kind in ("run_queued", "run_started"):
            self._queue_depth()
        elif kind == "host_result" and event.result.get("state") in FINAL_HOST:
            self.hosts.labels(event.result["state"]).inc()
        elif kind == "check_changed":
            key = (event.check, event.target)
            old = self._check_state.get(key)
            if old is not None:
                self.checks.labels(event.check, event.target, old).set(0)
            self.checks.labels(event.check, event.target, event.new).set(1)
            self._check_state[key] = event.new
        elif kind == "alert_changed":
            self._alerts()

    def _queue_depth(self) -> None:
        queue = self.engine.queue()
        running = sum(1 for r in queue if r["state"] == "running")
        self.queue.labels("running").set(running)
        self.queue.labels("queued").set(len(queue) - running)

    def _alerts(self) -> None:
        manager = self.engine.alerts
        if manager is None or manager.book is None:
            return
        counts: dict[str, int] = {}
        for a in manager.list_alerts():
            counts[a["status"]] = counts.get(a["status"], 0) + 1
        for status in ("firing", "acknowledged", "silenced", "maintenance"):
            self.alerts.labels(status).set(counts.get(status, 0))
        self.outbox.set(len(manager.book.outbox.pending()))
