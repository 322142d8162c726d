"""dentbook benchmarks: what the product exists for, each against a baseline measured in the same run.

Run `python -m bench --quick` (a smoke run, under two minutes) or `python -m bench --full`
(`nox -s bench`). One module per benchmark: `race`, `throughput`, `fanout`, `pages`,
`growth`; `run` is the runner. Everything talks to 127.0.0.1 only, every loop is bounded
in count and in time, and every server is a subprocess that is always stopped.
"""
