"""The experiments the DVC stages run, testable without DVC: APE, Scenario I, model inversion,
membership inference and the distinguishing game."""
