"""comorbid: multi-label classification with dependent labels, for automatic ICD coding.

A model is a distribution over label sets (``comorbid.distributions``); a prediction is the
decision that maximises the expected metric under it (``comorbid.decoders``).
"""

__version__ = "0.1.0"

from comorbid.estimator import MultiLabelClassifier

__all__ = ["MultiLabelClassifier", "__version__"]
