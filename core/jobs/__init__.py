"""Job schedules: the cron/Quartz evaluator, host time zone lookup and schedule wording."""
