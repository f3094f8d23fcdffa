"""Router selection time per request with 1, 10 and 100 deployments per alias, for every strategy.

python -m bench.router
"""

from __future__ import annotations

import time
from decimal import Decimal

from engine.routing.router import Router
from engine.routing.table import STRATEGIES, Alias, Cost, Deployment, Limits, RouterSettings


def _alias(size: int) -> Alias:
    deployments = tuple(
        Deployment(
            id=n,
            alias="bench",
            provider="p",
            upstream_model=f"m{n}",
            weight=1.0 + n % 3,
            priority=n % 2,
            costs=(Cost("input_token", Decimal(n + 1) / 1_000_000),),
            limits=Limits(rpm=1_000_000),
        )
        for n in range(size)
    )
    return Alias("bench", deployments)


def measure(size: int, strategy: str, rounds: int = 20_000) -> float:
    """Microseconds per selection."""
    router, alias = Router(seed=1), _alias(size)
    settings = RouterSettings(routing_strategy=strategy)
    router.select(alias, settings)
    started = time.perf_counter()
    for _ in range(rounds):
        router.select(alias, settings)
    return (time.perf_counter() - started) / rounds * 1e6


def main() -> None:
    sizes = (1, 10, 100)
    print("| strategy | " + " | ".join(f"{n} deployment{'s' if n > 1 else ''}" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for strategy in STRATEGIES:
        cells = [f"{measure(n, strategy, 20_000 if n < 100 else 4_000):.1f} µs" for n in sizes]
        print(f"| {strategy} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
