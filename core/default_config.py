"""The built-in default config, as the commented TOML file `fleetdeck init` writes out.

builtin_config() parses exactly this text, so the file a person edits and the config
fleetdeck runs without one never drift apart.
"""

from __future__ import annotations

DEFAULT_CONFIG_TOML = """\
# fleetdeck configuration.
#
# Check it after editing:   fleetdeck check-config
# Durations are strings: "250ms", "30s", "5m", "1h30m", "2d" (or a bare number of seconds).
# Lines starting with '#' are examples of every other option: uncomment and edit.

# theme = "dark"

[engine]
max_concurrent_runs = 16       # runs executing at once, over all jobs and hosts
# history_retention = 50000    # finished runs kept; older ones (and their logs) are pruned
# log_retention_bytes = 52428800   # one run's log is cut off at this size

[defaults]
# Every job takes these unless it sets its own.
timeout = "1h"                 # "none" means no limit
kill_grace = "10s"             # SIGTERM, then SIGKILL this long after (timeout or cancel)
retries = 0                    # extra attempts after a failed run
retry_backoff = "10s"          # wait before the first retry; doubles each time ...
retry_backoff_max = "10m"      # ... up to this
overlap = "skip"               # still running at the next fire: skip | queue | allow | replace
misfire = "run_once"           # fires missed while stopped: skip | run_once | run_all
misfire_grace = "1m"           # how late a fire may still run as if on time
# timezone = "Europe/Berlin"   # IANA zone for schedules; default: this machine's zone

# Hosts to run on over SSH. `local` (this machine, no SSH) is built in.
# [hosts.web01]
# address = "10.0.0.5"         # default: the host name itself, resolved by SSH
# port = 22
# user = "deploy"
# tags = { role = "web", dc = "eu" }
# groups = ["web", "eu"]       # target a whole group with targets = "@web"

# Jobs: the table key is the job's name (letters, digits, '_', '.', '-').
# Only `command` is required; a job without a schedule runs on demand only.

[checks.local-system]
description = "CPU, memory, disk and load of this machine (the Hosts screen, key 5)."
kind = "metrics"               # also: tcp, http, process, command, ssh
targets = "local"
interval = "10s"
cpu = [90, 98]                 # [warn, crit] percent
memory = [90, 97]
disk = [85, 95]                # the fullest mounted file system
fail = [3, 5]                  # down after 3 bad samples of the last 5 (flap damping)

[jobs.heartbeat]
description = "Proves fleetdeck is alive: one line every 30 seconds."
command = 'echo "heartbeat from $(uname -n) at $(date +%Y-%m-%dT%H:%M:%S%z)"'
schedule = "every 30s"
timeout = "10s"

[jobs.disk-report]
description = "Disk usage of the root file system."
command = "df -h /"
schedule = "every 5m"
timeout = "1m"

[jobs.flaky-check]
description = "Fails about one run in three, to show failures and retries."
command = '''
if [ $(( $(date +%s) % 3 )) -eq 0 ]; then
  echo "flaky-check: simulated failure" >&2
  exit 1
fi
echo "flaky-check: all good"
'''
schedule = "every 1m"
timeout = "30s"
retries = 1
retry_backoff = "5s"

# Every job option, with an example value:
# [jobs.backup]
# command = "/usr/local/bin/backup --all"
# targets = "local"            # comma list of hosts and @groups: "web01,web02,@db"
# schedule = "0 3 * * *"       # cron: minute hour day month weekday
#   other forms: "*/10 * * * * *" (cron with seconds), "@hourly", "@daily",
#                "every 30s", "every 2h", "at 2030-01-01 03:00"
# timezone = "Europe/Berlin"   # zone the schedule is read in (DST handled)
# jitter = "30s"               # start up to this much later, at random
# timeout = "15m"              # or "none"
# kill_grace = "10s"
# retries = 2
# retry_backoff = "30s"
# retry_backoff_max = "10m"
# overlap = "queue"            # skip | queue | allow | replace
# misfire = "skip"             # skip | run_once | run_all
# misfire_grace = "5m"
# env = { BACKUP_TARGET = "s3://bucket/path" }
# cwd = "/srv"
# tags = ["nightly", "storage"]
# enabled = true
# description = "Nightly backup of everything"
# alert_on = ["failed", "missed"]  # open an alert when a run fails / an occurrence is missed

# Alerts: checks going down, log rules firing and jobs that ask (alert_on) open alerts;
# notifiers deliver them, retried from a persisted outbox until delivered.
# [alerts]
# repeat = "30m"               # remind while an alert stays unacknowledged ("none": never)
# retry_backoff = "5s"         # first wait after a failed delivery; doubles each time
# retry_backoff_max = "5m"
# give_up_after = "1d"         # drop a notification still undelivered after this
#
# [notifiers.slack]
# kind = "webhook"             # webhook | command
# url = "${SLACK_WEBHOOK_URL}" # ${ENV} is expanded when sending; never logged or stored
# slack = true                 # body {"text": ...}; without it a JSON document of the alert
# headers = { Authorization = "Bearer ${ALERT_TOKEN}" }
# events = ["firing", "resolved", "reminder"]
# repeat = "1h"                # this notifier's reminder interval
# timeout = "10s"
#
# [notifiers.pager]
# kind = "command"             # gets FLEETDECK_ALERT_ID, _EVENT, _SOURCE, _TARGET, ...
# command = "/usr/local/bin/page-oncall"
#
# Maintenance windows keep notifications quiet (alerts are still recorded).
# [maintenance.nightly-db]
# targets = "@db"              # a target pattern; and/or checks = ["disk", "backup"]
# schedule = "0 2 * * *"       # recurring: cron start + duration
# duration = "1h"
# [maintenance.patch-web]
# targets = "web[01-04]"
# start = "2026-12-01 03:00"   # one-off: start + end
# end = "2026-12-01 05:00"

# Key bindings in the console: binding id -> key.
# [keys]
# run_job = "r"
# pause_job = "p"
# quit = "q"
"""
