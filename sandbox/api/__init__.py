"""One router per OpenStack service, plus the sandbox's own endpoints (clusters, admin)."""
