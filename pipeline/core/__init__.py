"""Infrastructure shared by every stage: errors, params, seeds, io, tracking (with execution and
dvc_params), compute, cli, training."""
