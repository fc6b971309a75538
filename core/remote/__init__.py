"""Remote execution: inventory and target patterns, SSH, fan-out, remote job runs."""
