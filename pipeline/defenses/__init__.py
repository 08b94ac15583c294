"""The defenses, behind one release interface (``release``): MID (``mid``), output perturbation
(``perturbation``) and Robust Privacy's smoothed label (``release.Smoothed``)."""
