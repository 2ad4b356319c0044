"""The examples in the signal modules' docstrings run as written."""

from __future__ import annotations

import doctest

import pytest

import features.phone
import riskengine.adapters.signals.base
import riskengine.adapters.signals.lookups


@pytest.mark.parametrize("module", [features.phone, riskengine.adapters.signals.base,
                                    riskengine.adapters.signals.lookups])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
