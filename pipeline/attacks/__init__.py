"""The attacks: label-only attribute inference (Scenario I), membership inference, BREP-MI
model inversion, and the distinguishing game of (R, alpha)-Robust Privacy. Each sees only what a
``pipeline.defenses.release.Release`` gives it."""
