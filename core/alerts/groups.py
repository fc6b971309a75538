"""Alert groups: one alert for the same check and cause across hosts.

When twelve hosts cross `cpu ≥ 98%` together, a person needs one page and one ack, not
twelve. A check's alert with a cause (core/health: "connection refused", "cpu ≥ 98%")
opening within `[alerts] group_window` of the last one to join an open group of the same
check and cause joins it instead of notifying on its own:

* the group is led by its first alert (its id is the group's); the lead's notification
  is the group's: `firing` when the group opens, `resolved` when its last member
  resolves (the lead's own resolution says nothing while others still fire);
* a member joining later records its host and sends nothing; the count grows;
* acknowledging the group acknowledges every open member.

Members are ordinary alerts (`group`: the lead's id), so listings, details, silences and
the outbox are as before; everything a join or a resolution changes is written in the
book's same commit as the notification it queues, so nothing is announced before it is
on disk. An alert with no cause (a job, a rule, an old event) is never grouped.
Membership is settled when an alert opens: a member whose check later goes from crit
to down stays in its group (its own condition and detail follow, as for any alert).
"""

from __future__ import annotations

from typing import Any

OPEN = ("firing", "acknowledged")


def group_key(alert: dict[str, Any]) -> str | None:
    """What members of one group share: the check and the cause (None: not grouped)."""
    if alert.get("kind") != "check" or not alert.get("cause"):
        return None
    return f"{alert['source']}|{alert['cause']}"


def group_title(lead: dict[str, Any], hosts: list[str]) -> str:
    """'check system: cpu ≥ 98% on 11 hosts' (one host: the lead's own words)."""
    if len(hosts) < 2:
        return ""
    return f"check {lead['source']}: {lead.get('cause', '')} on {len(hosts)} hosts"


class AlertGroups:
    """The book's grouping (mixed into AlertBook; uses its `_get`, `_save`, `_note`,
    `_notify`, `quiet`, `alerting`, `clock`)."""

    _groups: dict[str, int]  # group key -> lead id of the group that takes members

    def _index_groups(self, docs: list[dict[str, Any]]) -> None:
        """At load: every group with an open member takes members again."""
        self._groups = {}
        for doc in docs:
            key = group_key(doc)
            if key is not None and doc["state"] in OPEN and doc.get("group"):
                self._groups[key] = doc["group"]

    def members(self, lead: dict[str, Any]) -> list[dict[str, Any]]:
        """Every member of the group `lead` leads, the lead first."""
        out = []
        for member_id in lead.get("members") or [lead["id"]]:
            doc = self._get(member_id)  # type: ignore[attr-defined]
            if doc is not None:
                out.append(doc)
        return out

    def _join_group(self, alert: dict[str, Any], at: float) -> dict[str, Any] | None:
        """Put a new alert into its open group (returns the lead, saved by the caller),
        or make it the lead of a new one (returns None: it notifies as any alert)."""
        key = group_key(alert)
        window = self.alerting.settings.group_window  # type: ignore[attr-defined]
        if key is None or window <= 0:
            return None
        lead_id = self._groups.get(key)
        lead = self._get(lead_id) if lead_id is not None else None  # type: ignore[attr-defined]
        if lead is not None and at - lead.get("group_joined_at", lead["opened_at"]) <= window \
                and any(m["state"] in OPEN for m in self.members(lead)) \
                and (lead["notified_firing"] or self.quiet.reason(  # type: ignore[attr-defined]
                    alert, self.clock())):  # type: ignore[attr-defined]
            alert["group"] = lead["id"]
            lead["members"] = [*(lead.get("members") or [lead["id"]]), alert["id"]]
            lead["group_joined_at"] = at
            self._note(lead, at, "joined", f"#{alert['id']} on {alert['target']}")  # type: ignore[attr-defined]
            self._note(alert, at, "grouped", f"into #{lead['id']}: no notification of its own")  # type: ignore[attr-defined]
            return lead
        # a new group (also when the open one is quiet and this alert is not: it pages)
        alert["group"] = alert["id"]
        alert["members"] = [alert["id"]]
        alert["group_joined_at"] = at
        self._groups[key] = alert["id"]
        return None

    def _group_resolution(self, alert: dict[str, Any], at: float) -> tuple[bool, Any]:
        """After `alert` resolved: (whether its own resolution notifies, and the lead's
        Change when its group just resolved through a member other than the lead)."""
        lead_id = alert.get("group")
        if lead_id is None:
            return True, None
        lead = alert if lead_id == alert["id"] else self._get(lead_id)  # type: ignore[attr-defined]
        if lead is None:
            return True, None
        still = [m for m in self.members(lead) if m["state"] in OPEN and m["id"] != alert["id"]]
        if still:
            self._note(alert, at, "group still firing",  # type: ignore[attr-defined]
                       f"{len(still)} more in #{lead['id']}")
            return False, None
        key = group_key(lead)
        if key is not None and self._groups.get(key) == lead["id"]:
            del self._groups[key]
        if lead is alert:
            return True, None
        # the last member of a group whose lead resolved earlier: the group's resolution
        self._note(lead, at, "group resolved", f"last member #{alert['id']}")  # type: ignore[attr-defined]
        lead["resolution"] = (f"the last host, {alert['target']} (#{alert['id']}): "
                              f"{alert.get('resolution') or 'up'}")
        if lead["notified_firing"] and not self.quiet.reason(lead, self.clock()):  # type: ignore[attr-defined]
            return False, self._notify(lead, "resolved", "resolved", at)  # type: ignore[attr-defined]
        self._save(lead)  # type: ignore[attr-defined]
        return False, None

    def group_info(self, alert: dict[str, Any]) -> dict[str, Any]:
        """For a view: the group's lead id, and for a lead its members' ids and hosts."""
        lead_id = alert.get("group")
        if lead_id is None or lead_id != alert["id"]:
            return {"group": lead_id}
        members = self.members(alert)
        hosts = [m["target"] for m in members]
        return {"group": lead_id, "members": [m["id"] for m in members],
                "group_hosts": hosts, "group_title": group_title(alert, hosts),
                "group_open": sum(1 for m in members if m["state"] in OPEN)}
