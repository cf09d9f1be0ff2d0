"""The steps of a cluster's run as the page shows them: plan → approval → build →
provisioning → ready (or, destroying: plan → approval → destroy → destroyed), each done,
under way, waiting for someone, failed, or still to come."""

from typing import Literal

import streamlit as st
from pydantic import BaseModel

from mchub.status import DESTROY_FLOW, RunView

StepState = Literal["done", "running", "waiting", "failed", "todo"]

_BUILD = [("plan", "Plan"), ("approval", "Approval"), ("build", "Build"), ("provisioning", "Provisioning")]
_DESTROY = [("destroy-plan", "Plan"), ("approval", "Approval"), ("destroy", "Destroy")]
_ICONS: dict[StepState, str] = {
    "done": ":green[:material/check_circle:]",
    "running": ":blue[:material/progress_activity:]",
    "waiting": ":orange[:material/pending:]",
    "failed": ":red[:material/cancel:]",
    "todo": ":gray[:material/radio_button_unchecked:]",
}


class Step(BaseModel):
    title: str
    state: StepState


def steps_of(run: RunView) -> list[Step]:
    """Every step of `run`'s flow, with how far the run has got."""
    destroying = run.flow_name == DESTROY_FLOW
    phases = _DESTROY if destroying else _BUILD
    final = Step(title="Destroyed" if destroying else "Ready", state="done" if run.state_type == "COMPLETED" else "todo")
    if run.state_type == "COMPLETED":
        return [Step(title=title, state="done") for _, title in phases] + [final]
    names = [name for name, _ in phases]
    current = names.index(run.phase) if run.phase in names else 0
    if run.state_type in ("FAILED", "CRASHED", "CANCELLED"):
        now: StepState = "failed"
    elif run.awaiting_approval:
        now = "waiting"
    else:
        now = "running"
    states: list[StepState] = ["done"] * current + [now] + ["todo"] * (len(phases) - current - 1)
    return [Step(title=title, state=state) for (_, title), state in zip(phases, states)] + [final]


def phase_steps(run: RunView) -> None:
    """The steps in one line."""
    st.markdown("  →  ".join(f"{_ICONS[step.state]} {step.title}" for step in steps_of(run)))
