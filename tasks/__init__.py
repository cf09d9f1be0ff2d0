"""Prefect tasks: one step of a cluster's workflow each, thin wrappers around `mchub`."""
