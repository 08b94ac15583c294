"""Infrastructure shared by every stage: errors, params, seeds, io, tracking, compute, cli, training."""
