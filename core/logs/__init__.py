"""Log watching: follow files like `tail -F` (and commands' output), count what the
lines say in sliding windows, and raise `RuleChanged` when a rule crosses its threshold
(the alerts pipeline turns that into an alert). See follow.py, rules.py, monitor.py.
"""
