"""Jobs: schedules, the scheduler, dispatch and execution of runs, run records."""
