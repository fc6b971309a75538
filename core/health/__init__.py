"""Health: host metrics and probes, checks with thresholds and flap damping, and the
watchdog that restarts what dies (within limits).

`config` reads `[checks.NAME]`; `metrics` samples a host (psutil locally, /proc and df
over SSH in one round trip); `probes` are TCP, HTTP(S), process, command and SSH;
`sampling` takes one sample of a check on a target (here or over SSH); `damping` turns
samples into states (up, warn, crit, pending, down, maintenance, gave_up: a failed
probe is down, a threshold crossed is warn or crit on an answering host); `monitor` runs every
check on its own interval as an engine service and publishes `CheckChanged` (the alerts
pipeline's input) and `HealthSample` events.
"""
