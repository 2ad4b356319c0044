"""riskengine: login risk scoring with explained decisions."""

__version__ = "0.1.0"
