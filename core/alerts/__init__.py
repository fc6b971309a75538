"""Alerts: the alert book, the engine service, notifiers, maintenance and silences."""
