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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.alerts.book import describe
from core.alerts.config import NotifierConfig
from core.alerts.outbox import Outbox
from core.jobs.groups import popen_group
from core.secrets import SecretError, longest_first, mask, resolve

if TYPE_CHECKING:
    import httpx

    from core.httpclient import SharedClient

log = logging.getLogger("fleetdeck.notify")

MAX_PARALLEL = 8
ERROR_MAX = 200  # characters of an error kept in the outbox
REPLY_MAX = 64 * 1024  # bytes of a webhook's reply read (and dropped)
BAD_REQUEST = "the request cannot be made; check the url and headers once expanded"


class DeliveryError(Exception):
    """One failed attempt; the message is safe to log (no secret in it). `wait`: how
    long the receiver asked to be left alone (Retry-After), or that it refused this
    request as such (a 4xx: the next try waits the longest backoff); None: back off."""

    def __init__(self, message: str, wait: float | str | None = None) -> None:
        super().__init__(message)
        self.wait = wait


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
    if entry["event"] == "resolved" and alert.get("resolution"):  # not the failure again
        detail = f": {alert['resolution']}" + (f" (was: {alert['detail']})"
                                               if alert.get("detail") else "")
    how = "down" if alert.get("condition") == "down" else alert["severity"]
    size = alert.get("group_size") or 0
    if size > 1:  # a group: what its members share
        return (f"[fleetdeck] {label} #{alert['id']} check {alert['source']}: "
                f"{alert.get('cause', '')} on {size} hosts ({how})")
    return f"[fleetdeck] {label} #{alert['id']} {describe(alert)} ({how}){detail}"


class WebhookNotifier:
    """POSTs the notification as JSON (core/httpclient.py does the HTTP). A redirect is
    not followed: it is a failure that names the status only, since the Location could
    hold a secret and a POST should not wander to where a response says."""

    def __init__(self, cfg: NotifierConfig, http: SharedClient | None = None) -> None:
        self.cfg = cfg
        self.http = http  # the notifier set's keep-alive client; None: one per send

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
        headers = {"Content-Type": "application/json", "Idempotency-Key": entry["key"]}
        for name, value in self.cfg.headers.items():
            headers[name] = expand(value, secrets)
        try:
            await self._post(url, headers, self.body(entry))
        except DeliveryError as e:
            raise DeliveryError(redact(str(e), secrets), e.wait) from None

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> None:
        """One attempt under one deadline (the notifier's timeout). Messages are ours,
        never the library's: those can quote the URL or a header value."""
        import httpx

        from core.httpclient import client_for, read_at_most, reason

        timeout = self.cfg.timeout
        code: int | None = None  # the receiver's answer, once it came
        try:
            async with asyncio.timeout(timeout), client_for(
                    self.http.get() if self.http is not None else None) as client:
                request = _request(client, url, headers, body, timeout)
                response = await client.send(request, stream=True)
                code = response.status_code
                retry_after = response.headers.get("retry-after")
                try:
                    await read_at_most(response, REPLY_MAX)  # read out: kept alive
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            if code is None:  # once the status came, a slow reply body does not undo it
                raise DeliveryError(f"webhook timed out after {timeout:g}s") from None
        except httpx.LocalProtocolError:  # h11 refused to send it (a header value with CRLF)
            raise DeliveryError(BAD_REQUEST) from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as e:
            if code is None:
                raise DeliveryError(f"webhook failed: {reason(e)}") from None
        if code is None:  # not reached: each way out without a status raised above
            raise DeliveryError("webhook failed: no answer")
        if 200 <= code < 300:
            return
        if 300 <= code < 400:
            raise DeliveryError(f"HTTP {code} (redirect not followed)")
        if code in (429, 503) and retry_after is not None:
            raise DeliveryError(f"HTTP {code} (retry after {retry_after[:40]})",
                                _retry_after(retry_after))
        if 400 <= code < 500 and code not in (408, 425, 429):  # this request, as it is
            raise DeliveryError(f"HTTP {code}", "refused")
        raise DeliveryError(f"HTTP {code}")


def _retry_after(value: str) -> float | None:
    """Retry-After in seconds: a number of them, or an HTTP date; None when unreadable."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _request(client: httpx.AsyncClient, url: str, headers: dict[str, str], body: bytes,
             timeout: float) -> httpx.Request:
    """The POST, or a DeliveryError that quotes neither the URL nor a header value."""
    import httpx

    try:  # stricter than httpx's parser, which percent-encodes a stray "[" into the host
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        valid = False
    if not valid:
        raise DeliveryError("the url is not a valid http(s) URL once expanded")
    try:
        return client.build_request("POST", url, content=body, headers=headers,
                                    timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, TypeError):
        raise DeliveryError(BAD_REQUEST) from None


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
            "FLEETDECK_ALERT_RESOLUTION": a.get("resolution") or "",
            "FLEETDECK_ALERT_CONDITION": a.get("condition") or "",
            "FLEETDECK_ALERT_OPENED_AT": str(int(a["opened_at"])),
            "FLEETDECK_ALERT_SUMMARY": summary(entry),
        }

    async def send(self, entry: dict[str, Any]) -> None:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", self.cfg.command, env={**os.environ, **self.env(entry)},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, **popen_group())
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


def make_notifiers(cfgs: dict[str, NotifierConfig],
                   http: SharedClient | None = None) -> dict[str, Any]:
    """The notifiers by name; the webhooks share `http` (its owner closes it)."""
    out: dict[str, Any] = {}
    for name, cfg in cfgs.items():
        out[name] = (WebhookNotifier(cfg, http) if cfg.kind == "webhook"
                     else CommandNotifier(cfg))
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
                    delay = outbox.failed(entry, str(e), clock(), wait=e.wait)
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
