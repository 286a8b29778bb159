"""codexgw benchmarks (issue 7): ``python -m bench`` or ``make bench``; never run in CI."""
