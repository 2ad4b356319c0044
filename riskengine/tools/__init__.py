"""Offline tools: simulate, replay, backtest, train, promote, datasets, and the CLI.

Tools may import every layer; nothing imports a tool.
"""
