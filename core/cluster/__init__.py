"""A fleetdeck cluster on Redis: a leader lease with a fencing token, occurrences
claimed once across nodes, members and their heartbeats."""
