"""The paper's models, built by registered builder functions (``get_model``, ``list_models``)."""
# Each model module registers its builders on import; add one line per module.
from . import adresnet, crowd, lenet, restoration  # noqa: F401
from ._registry import get_model, get_model_builder, list_models, register_model

__all__ = ["get_model", "get_model_builder", "list_models", "register_model"]
