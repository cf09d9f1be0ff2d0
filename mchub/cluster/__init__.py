"""A cluster's folder and life: the workspace, the lifecycle steps, what was built (read
back after an apply), archiving without secrets, expiration."""
