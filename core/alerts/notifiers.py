"""Notifiers: a webhook (JSON, or Slack's `{"text": ...}`) and a local command.

Delivery is driven by the outbox (core/alerts/outbox.py): each entry is on disk before it is
sent, retried with exponential backoff while it fails, and marked delivered once it
went out. A receiver that dedups can use the `Idempotency-Key` header (one key per
alert transition and notifier); the only resend is of an entry whose delivery was
under way when fleetdeck died.

Secrets: header values and URLs may hold `${ENV}` references, expanded at send time
only. Expanded values are never logged, stored or put into an error message (errors
are redacted and name the notifier, never its URL).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from core.alerts.book import describe
from core.alerts.config import NotifierConfig
from core.alerts.outbox import Outbox
from core.secrets import SecretError, longest_first, mask, resolve

log = logging.getLogger("fleetdeck.notify")

MAX_PARALLEL = 8
ERROR_MAX = 200  # characters of an error kept in the outbox


class DeliveryError(Exception):
    """One failed attempt; the message is safe to log (no secret in it)."""


def expand(text: str, secrets: list[str], env: dict[str, str] | None = None) -> str:
    """`${NAME}` and `${file:PATH}` filled in (core.secrets); each value is added to
    `secrets`. A reference that cannot be filled in fails this delivery, naming it."""
    try:
        return resolve(text, secrets, env)
    except SecretError as e:
        raise DeliveryError(str(e)) from None


def redact(message: str, secrets: list[str]) -> str:
    """A delivery error safe to log: secrets masked, cut to ERROR_MAX."""
    return mask(message, longest_first(secrets))[:ERROR_MAX]


def summary(entry: dict[str, Any]) -> str:
    """One line a person reads in Slack or a mail: what, where, how bad, why."""
    alert = entry["alert"]
    label = {"firing": "FIRING", "resolved": "RESOLVED", "reminder": "STILL FIRING"}[
        entry["event"]]
    detail = f": {alert['detail']}" if alert.get("detail") else ""
    return f"[fleetdeck] {label} #{alert['id']} {describe(alert)} ({alert['severity']}){detail}"


class WebhookNotifier:
    def __init__(self, cfg: NotifierConfig) -> None:
        self.cfg = cfg

    def body(self, entry: dict[str, Any]) -> bytes:
        if self.cfg.slack:
            doc: dict[str, Any] = {"text": summary(entry)}
        else:
            doc = {"event": entry["event"], "key": entry["key"], "alert": entry["alert"],
                   "text": summary(entry), "notifier": self.cfg.name}
        return json.dumps(doc).encode()

    async def send(self, entry: dict[str, Any]) -> None:
        secrets: list[str] = []
        url = expand(self.cfg.url, secrets)
        headers = {"Content-Type": "application/json", "User-Agent": "fleetdeck",
                   "Idempotency-Key": entry["key"]}
        for name, value in self.cfg.headers.items():
            headers[name] = expand(value, secrets)
        try:
            request = urllib.request.Request(url, data=self.body(entry), headers=headers,
                                             method="POST")
        except ValueError:  # its message quotes the URL, which may hold a secret
            raise DeliveryError("the url is not a valid http(s) URL once expanded") from None
        try:
            await asyncio.to_thread(self._post, request, self.cfg.timeout)
        except DeliveryError as e:
            raise DeliveryError(redact(str(e), secrets)) from None

    @staticmethod
    def _post(request: urllib.request.Request, timeout: float) -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
                resp.read(65536)
        except urllib.error.HTTPError as e:
            raise DeliveryError(f"HTTP {e.code}") from None
        except urllib.error.URLError as e:
            raise DeliveryError(f"cannot reach the webhook: {e.reason}") from None
        except ValueError as e:  # bad URL or header value: the message would quote them
            raise DeliveryError(f"the request cannot be made ({type(e).__name__}); check "
                                "the url and headers once expanded") from None
        except (TimeoutError, OSError) as e:
            raise DeliveryError(f"webhook failed: {type(e).__name__}: {e}") from None


class CommandNotifier:
    """Runs `command` with the alert in FLEETDECK_ALERT_* variables; exit 0 is delivered."""

    def __init__(self, cfg: NotifierConfig) -> None:
        self.cfg = cfg

    @staticmethod
    def env(entry: dict[str, Any]) -> dict[str, str]:
        a = entry["alert"]
        return {
            "FLEETDECK_ALERT_ID": str(a["id"]),
            "FLEETDECK_ALERT_EVENT": entry["event"],
            "FLEETDECK_ALERT_KEY": entry["key"],
            "FLEETDECK_ALERT_KIND": a["kind"],
            "FLEETDECK_ALERT_SOURCE": a["source"],
            "FLEETDECK_ALERT_TARGET": a["target"],
            "FLEETDECK_ALERT_STATE": a["state"],
            "FLEETDECK_ALERT_SEVERITY": a["severity"],
            "FLEETDECK_ALERT_DETAIL": a.get("detail") or "",
            "FLEETDECK_ALERT_OPENED_AT": str(int(a["opened_at"])),
            "FLEETDECK_ALERT_SUMMARY": summary(entry),
        }

    async def send(self, entry: dict[str, Any]) -> None:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", self.cfg.command, env={**os.environ, **self.env(entry)},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), self.cfg.timeout)
        except TimeoutError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            raise DeliveryError(f"command timed out after {self.cfg.timeout:g}s") from None
        except asyncio.CancelledError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            raise
        if proc.returncode != 0:
            last = (err or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise DeliveryError(f"command exited {proc.returncode}"
                                + (f": {last[0][:120]}" if last[0] else ""))


def make_notifiers(cfgs: dict[str, NotifierConfig]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, cfg in cfgs.items():
        out[name] = WebhookNotifier(cfg) if cfg.kind == "webhook" else CommandNotifier(cfg)
    return out


async def deliver(outbox: Outbox, notifiers: dict[str, Any], entries: list[dict[str, Any]],
                  clock: Callable[[], float]) -> None:
    """Send due entries (in order per notifier, notifiers side by side); record results."""
    by_notifier: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_notifier.setdefault(e["notifier"], []).append(e)
    gate = asyncio.Semaphore(MAX_PARALLEL)

    async def run(name: str, queue: list[dict[str, Any]]) -> None:
        notifier = notifiers.get(name)
        if notifier is None:
            return
        async with gate:
            for entry in queue:
                try:
                    await notifier.send(entry)
                except DeliveryError as e:
                    delay = outbox.failed(entry, str(e), clock())
                    log.warning("notification %s via %s failed (attempt %d): %s; retry in "
                                "%.1fs", entry["key"], name, entry["attempts"] + 1, e, delay)
                    return  # keep this notifier's order: later entries wait their turn
                except Exception as e:  # a bug must not stop delivery for good
                    # no traceback or message: either could quote a URL or header value
                    delay = outbox.failed(entry, f"fleetdeck error: {type(e).__name__}",
                                        clock())
                    log.error("notification %s via %s failed: %s; retry in %.1fs",
                              entry["key"], name, type(e).__name__, delay)
                    return
                outbox.delivered(entry, clock())
                log.info("notification %s via %s delivered (%s)", entry["key"], name,
                         entry["event"])

    await asyncio.gather(*(run(n, q) for n, q in by_notifier.items()))
