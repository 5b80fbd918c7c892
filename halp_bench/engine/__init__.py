"""The training loop and its plumbing: devices, memory and time meters, checkpoints, batches."""
