"""The sandbox cloud: a local OpenStack API service that openstacksdk and the `openstack` CLI use.

Start it with `sandbox.server.serve(...)` (or `python -m sandbox`); reach it with the text
of `sandbox.clouds.clouds_yaml(...)`.
"""
