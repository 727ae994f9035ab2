"""Elder-welfare escalation: alerts for elders not reached or asking for help."""
