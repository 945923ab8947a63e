"""Benchmarks of the ledger against its physical floor and against what users would use instead.

``python -m bench`` starts a private server (same discovery as the tests),
runs every scenario on it in one run, and writes ``bench/results/latest.json``,
``latest.md`` and PNG plots. Every figure is a median over repetitions with
its min and max; every comparison is a ratio of two things measured side by
side in the same run, because the machine may be shared and noisy.

Modules:

- :mod:`bench.settings` the sizes of each mode (smoke, quick, full)
- :mod:`bench.harness` timing, repetitions, statistics, server counters, progress
- :mod:`bench.workload` generated policies, orders, and the pipelined reserve
- :mod:`bench.reserve_variants` the reserve script with parts cut out, for the profile
- :mod:`bench.floors` the floor scripts of ``bench/lua``
- :mod:`bench.workers` functions run in the racing worker processes
- :mod:`bench.loadgen` HTTP load for the gateway, run in those processes
- :mod:`bench.scenarios` one module per scenario group
- :mod:`bench.targets` the issue's targets, judged from a run's results
- :mod:`bench.report` JSON, Markdown and PNG output

See docs/performance.md for how to read the results.
"""
