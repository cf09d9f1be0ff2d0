"""A cluster's status as a coloured chip, with the status names users of the original MC Hub know."""

from typing import Literal

import streamlit as st

from mchub.status import Status

Color = Literal["red", "orange", "blue", "green", "violet", "gray"]

# Statuses that move by themselves: pages showing them re-read the cluster often.
MOVING: frozenset[Status] = frozenset(
    {Status.CREATED, Status.PLAN_RUNNING, Status.BUILD_RUNNING, Status.PROVISIONING_RUNNING, Status.DESTROY_RUNNING}
)
ERRORS: frozenset[Status] = frozenset(
    {Status.PLAN_ERROR, Status.BUILD_ERROR, Status.PROVISIONING_ERROR, Status.DESTROY_ERROR}
)


def chip_style(status: Status) -> tuple[Color, str]:
    """The colour and icon of a status chip."""
    if status in ERRORS:
        return "red", ":material/error:"
    if status in MOVING:
        return "blue", ":material/progress_activity:"
    if status == Status.AWAITING_APPROVAL:
        return "orange", ":material/pending_actions:"
    if status == Status.PROVISIONING_SUCCESS:
        return "green", ":material/check_circle:"
    if status == Status.DRIFTED:
        return "orange", ":material/sync_problem:"
    if status == Status.CANCELLED:
        return "orange", ":material/cancel:"
    return "gray", ":material/radio_button_unchecked:"


def label(status: Status) -> str:
    return status.value.replace("_", " ")


def status_chip(status: Status) -> None:
    color, icon = chip_style(status)
    st.badge(label(status), color=color, icon=icon)
