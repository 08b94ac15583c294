"""robust-privacy: inference-time privacy through certified robustness, as a library.

The packages, from the bottom up (each imports only those above it in this list):

* ``core``: errors, params, seeds, io, tracking (MLflow: execution, dvc_params), compute (local / Ray),
  cli, training.
* ``smoothing``: randomized smoothing, the one engine every attack and defense uses.
* ``tabular``: the insurance task (data, preprocessing, the MLP, APE).
* ``vision``: the image task (data, networks, the GAN prior).
* ``defenses``: the release interface and the defenses (MID, output perturbation; RP is smoothing).
* ``attacks``: attribute inference, membership inference, BREP-MI model inversion.
* ``experiments``: the experiments the DVC stages run.
* ``reporting``: figures, tables and every number quoted from a paper.
"""
