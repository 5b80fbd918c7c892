"""Self-supervised methods: one file and one registered class each (see base.py for the contract)."""
