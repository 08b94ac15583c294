"""The attacks: label-only attribute inference (Scenario I), membership inference and BREP-MI
model inversion. Each sees only what a ``pipeline.defenses.release.Release`` gives it."""
