"""edgecheck: on which chip should this model run, and what will it cost?

A pytest-based reproducibility suite for "Exploring Deep Neural Networks on
Edge TPU" (Hosseininoorbin et al., arXiv 2110.08826). Importing the package is
cheap and never imports TensorFlow.
"""

__version__ = "0.1.0"
