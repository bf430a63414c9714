"""pgqrs 0.15's retry policy, as one of ours. Its `max_attempts` counts retries (3 by default: 4 executions);
ours counts executions. A StepRetryPolicy is the dict of our policy with one more attempt, so it goes wherever
ours does (`store.create_workflow(name, policy)`, `pgqrs.workflow().retry_policy(policy)`) and retries as
often as it did in 0.15 (docs/migrating-from-pgqrs.md, "Attempts")."""

from __future__ import annotations

from typing import Any

# 0.15's jitter was +-25% of the delay; ours shortens the delay by up to that fraction
JITTER = 0.25


class BackoffStrategy:
    """The delay between retries: fixed, or exponential (base * 2^n, capped), optionally with jitter."""

    def __init__(self, policy: dict[str, Any]) -> None:
        self.policy = policy

    @staticmethod
    def fixed(delay_seconds: int) -> BackoffStrategy:
        """`delay_seconds` before every retry."""
        return BackoffStrategy({"backoff": "fixed", "base_seconds": delay_seconds,
                                "max_seconds": delay_seconds, "jitter": 0})

    @staticmethod
    def exponential(base_seconds: int, max_seconds: int) -> BackoffStrategy:
        """base_seconds, doubling with each retry, at most max_seconds."""
        return BackoffStrategy({"backoff": "exponential", "base_seconds": base_seconds,
                                "max_seconds": max_seconds, "jitter": 0})

    @staticmethod
    def exponential_with_jitter(base_seconds: int, max_seconds: int) -> BackoffStrategy:
        """As exponential, each delay shortened by a random part of up to a quarter."""
        return BackoffStrategy({"backoff": "exponential", "base_seconds": base_seconds,
                                "max_seconds": max_seconds, "jitter": JITTER})

    def __repr__(self) -> str:
        return f"BackoffStrategy({self.policy})"


class StepRetryPolicy(dict[str, Any]):
    """`StepRetryPolicy(max_attempts=3, backoff=None)`: `max_attempts` retries after the first execution
    (0.15's meaning), so our policy's max_attempts (executions) is one more. The default backoff is 0.15's:
    exponential from 1 s to 60 s with jitter."""

    def __init__(self, max_attempts: int = 3, backoff: BackoffStrategy | None = None) -> None:
        strategy = backoff or BackoffStrategy.exponential_with_jitter(1, 60)
        super().__init__({"max_attempts": max_attempts + 1, **strategy.policy})
        self.retries = max_attempts

    @property
    def max_attempts(self) -> int:
        """The retries after the first execution (0.15's max_attempts)."""
        return self.retries
