"""The `mchub` command's parser and its commands."""

import argparse
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from mchub.cli.cluster_commands import add_cluster_commands
from mchub.cli.errors import settings_problem, unexpected_failure
from mchub.cli.spec_file import SpecProblemsError, checked_spec
from mchub.cloud.connection import sandbox_clouds_yaml
from mchub.errors import MCHubError
from mchub.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    try:
        get_settings()
    except ValidationError as error:
        print(f"mchub: {settings_problem(error)}", file=sys.stderr)
        return 1
    try:
        args = _parser().parse_args(words)
        return args.run(args)
    except MCHubError as error:  # a person's mistake, or the cloud's state: it says what to do
        print(f"mchub: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmchub: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        print(f"mchub: {unexpected_failure(error, words)}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="mchub", description="MC Hub: Magic Castle clusters on OpenStack.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    sandbox = commands.add_parser("sandbox", help="run the local sandbox OpenStack cloud in the foreground")
    sandbox.add_argument("--host", default=settings.sandbox_host)
    sandbox.add_argument("--port", type=int, default=settings.sandbox_port)
    sandbox.add_argument("--data-dir", type=Path, default=settings.sandbox_data_dir)
    sandbox.add_argument(
        "--boot-seconds",
        type=float,
        default=None,
        help="seconds before a cluster's JupyterHub and FreeIPA answer (default: as last set, else "
        f"MCHUB_SANDBOX_BOOT_SECONDS={settings.sandbox_boot_seconds:g})",
    )
    sandbox.add_argument(
        "--print-clouds-yaml", action="store_true", help="print the clouds.yaml that reaches it, and exit"
    )
    sandbox.set_defaults(run=_sandbox)

    up = commands.add_parser("up", help="start the whole product on this machine; Ctrl-C stops it")
    up.set_defaults(run=_up, worker_only=False)
    worker = commands.add_parser(
        "worker",
        help="run clusters' runs on this machine for a hub whose `mchub up` runs on another "
        "(MCHUB_PREFECT_API_URL, MCHUB_SHARED_STORE_URL); Ctrl-C stops it",
    )
    worker.set_defaults(run=_up, worker_only=True)

    resources = commands.add_parser("resources", help="show the flavors, images and quotas of a cloud project")
    resources.add_argument("--cloud", default=settings.cloud, help="cloud name in clouds.yaml")
    resources.set_defaults(run=_resources)

    render = commands.add_parser(
        "render",
        help="print the main.tf.json and terraform.tfvars.json the hub would write for a spec; touches nothing",
    )
    render.add_argument("spec", type=Path, help="cluster spec in YAML")
    render.add_argument(
        "--cloud",
        choices=["sandbox", "openstack"],
        default="sandbox",
        help="which module block: the sandbox's, or Magic Castle's openstack module (default: sandbox)",
    )
    render.set_defaults(run=_render)

    check = commands.add_parser("check", help="validate a cluster spec file against the rules and the cloud's quotas")
    check.add_argument("spec", type=Path, help="cluster spec in YAML, e.g. examples/cluster.yaml")
    check.set_defaults(run=_check)

    add_cluster_commands(commands)
    return parser


def _sandbox(args: argparse.Namespace) -> int:
    from sandbox.clouds import clouds_yaml, write_clouds_yaml
    from sandbox.server import ListenError, serve
    from sandbox.state import BootSecondsError, StateFileError

    if args.print_clouds_yaml:
        print(clouds_yaml(args.host, args.port), end="")
        return 0
    # Written where mchub looks for the sandbox cloud, so nothing else needs configuring.
    path = sandbox_clouds_yaml()
    write_clouds_yaml(path, args.host, args.port)
    boot = args.boot_seconds
    if boot is None and "MCHUB_SANDBOX_BOOT_SECONDS" in os.environ:
        boot = get_settings().sandbox_boot_seconds
    print(f"sandbox cloud on http://{args.host}:{args.port} (clouds.yaml: {path}); Ctrl-C stops it")
    try:
        serve(args.host, args.port, args.data_dir, boot_seconds=boot)
    except (ListenError, StateFileError, BootSecondsError) as error:
        print(f"mchub sandbox: {error}", file=sys.stderr)
        return 1
    return 0


def _up(args: argparse.Namespace) -> int:
    from mchub.orchestration.stack import StartError, up

    try:
        return up(get_settings(), worker_only=args.worker_only)
    except StartError as error:
        print(f"mchub: {error}", file=sys.stderr)
        return 1


def _resources(args: argparse.Namespace) -> int:
    from mchub.cloud.resources import reader

    found = reader(args.cloud).read()
    print(f"Cloud {found.cloud}\n\nFlavors")
    for flavor in found.flavors:
        print(f"  {flavor.name:<18} {flavor.vcpus:>3} vCPU {flavor.ram_mb / 1024:>6g} GB RAM "
              f"{flavor.disk_gb:>4} GB disk{f'  {flavor.gpus} GPU' if flavor.gpus else ''}")
    print("\nImages a cluster can use")
    for image in found.images:
        print(f"  {image.name}")
    print("\nQuotas (used / limit, free)")
    for quota in found.quotas.all():
        unit = f" {quota.unit}" if quota.unit else ""
        limit = "unlimited" if quota.limit < 0 else f"{quota.limit}{unit}"
        free = "" if quota.free is None else f", {quota.free}{unit} free"
        print(f"  {quota.name:<15} {quota.used}{unit} / {limit}{free}")
    return 0


def _render(args: argparse.Namespace) -> int:
    import json

    from mchub.spec.model import SpecError, load_spec
    from mchub.terraform import config

    try:
        spec = load_spec(args.spec)
    except SpecError as error:
        raise SpecProblemsError(f"{args.spec} cannot be used:\n{error}") from error
    settings = get_settings()
    workdir = settings.clusters_dir / spec.hostname
    sandbox_url = f"http://{settings.sandbox_host}:{settings.sandbox_port}"
    files = {
        config.CONFIG_FILE: config.render(spec, args.cloud, workdir),
        config.VARIABLES_FILE: config.variable_values(spec, args.cloud, sandbox_url),
    }
    print(json.dumps(files, indent=2))
    return 0


def _check(args: argparse.Namespace) -> int:
    spec = checked_spec(args.spec)
    print(f"{spec.hostname}: the spec is valid and fits in the quotas of cloud {spec.cloud!r}")
    return 0
