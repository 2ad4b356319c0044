"""Anomaly and statistical models over the login features, and their artifacts."""

from models.anomaly import AnomalyModel, vectorize
from models.base import RiskModel
from models.persistence import ModelArtifactError, load, save

__all__ = ["AnomalyModel", "ModelArtifactError", "RiskModel", "load", "save", "vectorize"]
