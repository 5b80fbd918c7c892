"""Knowing the data: one scan per split (cached), the checks run on it, the report of
`halp-bench data` and the fingerprint stored with every result row."""
