"""Where experiments run: Ray Train worker groups, SLURM jobs via submitit."""
