"""Accounts, roles on sites, API keys and rate limits: who may read and write what."""
