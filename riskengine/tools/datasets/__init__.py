"""Loaders for public login datasets, streamed as the wire records the service accepts."""

from riskengine.tools.datasets.rba import RBA_COLUMNS, RbaReader, read_rba

__all__ = ["RBA_COLUMNS", "RbaReader", "read_rba"]
