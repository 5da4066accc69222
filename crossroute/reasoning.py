"""The one mapping between reasoning effort levels and thinking budgets.

| effort  | budget (tokens) | Anthropic (adaptive)    | Gemini 3 thinkingLevel |
|---------|-----------------|-------------------------|------------------------|
| none    | 0               | thinking disabled       | budget 0               |
| minimal | 512             | effort low              | MINIMAL                |
| low     | 1024            | effort low              | LOW                    |
| medium  | 8192            | effort medium           | MEDIUM                 |
| high    | 24576           | effort high             | HIGH                   |
| xhigh   | 32768           | effort xhigh            | XHIGH                  |
| max     | 128000          | effort max              | XHIGH                  |
| auto    | -1 (dynamic)    | adaptive, no effort     | budget -1              |

Budget to effort: 0 none, -1 auto, <=512 minimal, <=1024 low, <=8192 medium,
<=24576 high, <=32768 xhigh, above that max.
"""

from __future__ import annotations

from crossroute.ir import Effort, ReasoningConfig

BUDGET_BY_EFFORT: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 128000,
    "auto": -1,
}

_EFFORT_CEILINGS: tuple[tuple[int, Effort], ...] = (
    (512, "minimal"),
    (1024, "low"),
    (8192, "medium"),
    (24576, "high"),
    (32768, "xhigh"),
)

EFFORTS: frozenset[str] = frozenset(BUDGET_BY_EFFORT)


def effort_of(config: ReasoningConfig) -> Effort | None:
    """The effort level a config asks for, derived from its budget if needed."""
    if config.effort is not None:
        return config.effort
    if config.budget is None:
        return None
    return budget_to_effort(config.budget)


def budget_of(config: ReasoningConfig) -> int | None:
    """The thinking budget a config asks for (-1 dynamic, 0 off)."""
    if config.budget is not None:
        return config.budget
    if config.effort is None:
        return None
    return BUDGET_BY_EFFORT[config.effort]


def budget_to_effort(budget: int) -> Effort:
    if budget < 0:
        return "auto"
    if budget == 0:
        return "none"
    for ceiling, effort in _EFFORT_CEILINGS:
        if budget <= ceiling:
            return effort
    return "max"
