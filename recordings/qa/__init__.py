"""Quality review of recorded calls: fair samples, scorecards, reviews, calibration."""
