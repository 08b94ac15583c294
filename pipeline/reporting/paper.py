"""Every number this project quotes from a paper, in one place: the Robust Privacy paper (Jin,
Zhang, Liu, Zhang and Zou, "Robust Privacy: Inference-Time Privacy through Certified
Robustness") is the reference the report tables print beside our measurements."""

# Table 1 (Section 5): accuracy, abstention rate, Avg. R of the base and smoothed classifiers.
PAPER_TABLE1 = {"Base": (1.0, None, None), "sigma=1": (0.9636, 0.0364, 0.56),
                "sigma=2": (0.9276, 0.0723, 0.63), "sigma=3": (0.8904, 0.1096, 0.65)}

# Section 5: how far below B positive predictions reach (BMI units), Figure 1.
PAPER_EXPANSION = {"sigma=1": 0.4, "sigma=3": 1.0}

# Section 6 (BREP-MI on CelebA): "ASR / accuracy" per configuration, as the report prints them.
PAPER_INVERSION = {"base": "73% / 100%", "sigma=0.03,N=100": "44% / 100%", "sigma=0.1,N=100": "4% / 59%",
                   "sigma=0.1,N=10": "6% / -"}
