"""The top floor: the `her2-cds` command line, the demo and the population run.

It drives both the service (`cds_service`) and the generator (`synthetic`); nothing below
imports it. `cli.main` is the `her2-cds` console script.
"""
