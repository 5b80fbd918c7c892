"""Files a dataset can come in: our generic `.npz`, a prepared directory (`prepared_dir`), other
codebases' files (`imported`), all opened without running code (`safe_load`)."""
