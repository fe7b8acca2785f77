"""comorbid: multi-label classification with dependent labels, for automatic ICD coding.

A model is a distribution over label sets (``comorbid.distributions``); a prediction is the
decision that maximises the expected metric under it (``comorbid.decoders``).
"""

__version__ = "0.1.0"

__all__ = ["ModelSpec", "MultiLabelClassifier", "MultiLabelModel", "__version__"]


def __getattr__(name: str):
    # Imported on first use: ``import comorbid.data`` (readers) must not pull in torch and
    # scikit-learn, which the estimator needs.
    if name == "MultiLabelClassifier":
        from comorbid.estimator import MultiLabelClassifier

        return MultiLabelClassifier
    if name == "MultiLabelModel":
        from comorbid.model import MultiLabelModel

        return MultiLabelModel
    if name == "ModelSpec":
        from comorbid.spec import ModelSpec

        return ModelSpec
    raise AttributeError(f"module 'comorbid' has no attribute {name!r}")
