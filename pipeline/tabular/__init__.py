"""The tabular task of the Robust Privacy paper (Section 5, Appendix A): the insurance table, its
preprocessing, the BMI-driven MLP and Attribute Privacy Enhancement (Definition 2)."""
