"""Prefect flows: the order of a cluster's steps, its approval, lock, labels and retries."""
