"""Workflows: steps with dependencies, approval gates, outputs passed on, remediation."""
