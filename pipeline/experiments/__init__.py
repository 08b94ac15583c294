"""The experiments the DVC stages run, testable without DVC: APE, Scenario I, model inversion
and membership inference."""
