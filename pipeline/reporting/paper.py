"""Every number this project quotes from a paper, in one place: the Robust Privacy paper (Jin,
Zhang, Liu, Zhang and Zou, "Robust Privacy: Inference-Time Privacy through Certified
Robustness") is the reference the report tables print beside our measurements."""

# Table 1 (Section 5): accuracy, abstention rate, Avg. R of the base and smoothed classifiers.
PAPER_TABLE1 = {"base": (1.0, None, None), "sigma_1": (0.9636, 0.0364, 0.56),
                "sigma_2": (0.9276, 0.0723, 0.63), "sigma_3": (0.8904, 0.1096, 0.65)}

# Section 5: how far below B positive predictions reach (BMI units), Figure 1.
PAPER_EXPANSION = {"sigma_1": 0.4, "sigma_3": 1.0}

# Section 6 (BREP-MI on CelebA): "ASR / accuracy" per configuration, as the report prints them.
PAPER_INVERSION = {"base": "73% / 100%", "rp.sigma_0_03.n_100": "44% / 100%", "rp.sigma_0_1.n_100": "4% / 59%",
                   "rp.sigma_0_1.n_10": "6% / -"}

# The revised version (arXiv 2601.17360v2, abstract): on the model-inversion task RP keeps 98.4%
# accuracy at 21% ASR, while DP-SGD must drop to 61.7% accuracy to reach a comparable ASR.
PAPER_FRONTIER = {"asr": 0.21, "rp_accuracy": 0.984, "dpsgd_accuracy": 0.617}

# The revised version (abstract): RP raises the median length of the RAP-compatible inference
# interval of BMI from 23.50 (the base model) to 29.96.
PAPER_INTERVAL = {"base": 23.50, "rp": 29.96}
