"""Small neutral helpers every layer may use (atomic files, progress bars, the CPU share,
optimisers and schedules, collectives across ranks); they import nothing else from halp_bench but
its errors and settings (config)."""
