"""Periodic work not driven by new events: the order batch and the forecasts. Each run
is claimed once in the store (runs.py), so any number of schedulers, `tapioca batch run`
and the sync route never run one job twice."""
