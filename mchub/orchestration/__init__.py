"""Everything that talks to Prefect or runs the platform: the runs client, Prefect's
server wrapper, the worker and its wake-up socket, the warm engines and their launcher, the
work pool and deployments, and the processes `mchub up` starts."""
