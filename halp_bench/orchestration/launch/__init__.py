"""Running a grid as many jobs: the plan (one unit per pretraining), the launchers (submitit's
local and Slurm executors), the claims guard the runner uses, and `halp-bench status`."""
