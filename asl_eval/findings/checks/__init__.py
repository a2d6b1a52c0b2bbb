"""The built-in checks; importing this package registers them (in registry order):

- :mod:`.domain`: ``domain-drop``, ``class-drop``, ``too-few-drop``;
- :mod:`.errors`: ``confusion``, ``given-up``, ``collapse``;
- :mod:`.confidence`: ``overconfidence``, ``too-few``;
- :mod:`.properties`: ``domain-property``;
- :mod:`.slices`: ``slice``;
- :mod:`.robustness`: ``robustness``;
- :mod:`.suspicious`: ``suspicious-labels``, ``embedding-distance``;
- :mod:`.sections`: ``cam-background``, ``cam-faithfulness``, ``leakage``.
"""

from __future__ import annotations

from asl_eval.findings.checks import (
    confidence,
    domain,
    errors,
    properties,
    robustness,
    sections,
    slices,
    suspicious,
)

__all__ = [
    "confidence",
    "domain",
    "errors",
    "properties",
    "robustness",
    "sections",
    "slices",
    "suspicious",
]
