"""`vanda bench`: the pipeline against its limits, a naive peer, HTTP, latency and rebuild, in one run.

Modules: `workload` (the seeded incidents and how they are split), `stats` (percentiles,
ratios, targets, the table), `memory` (RSS of each service per phase), `stackctl` (a fresh
stack or a running one), and one module per measured phase: `limit`, `naive`, `pipeline`,
`http`, `latency`, `rebuild`. `run` ties them together.
"""
