"""`make bench`: project figures next to a raw-library baseline measured in the same run."""
