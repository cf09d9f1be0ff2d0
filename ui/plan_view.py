"""A plan as the person approving it reads it: changes grouped by instances and volumes,
what destroys something in red, and the plan's warning set apart.

The input is the markdown the flows publish (mchub.terraform.plan.PlanSummary.to_markdown): change
lines are list items holding one code span that starts with Terraform's symbol.
"""

import re
from typing import Literal

import streamlit as st
from pydantic import BaseModel

from ui.text import literal

_CHANGE = re.compile(r"^- `(?P<line>(?P<symbol>-/\+ |<= |~ |\+|-).*)`$")
_COLORS = {"+": "green", "~ ": "orange", "-": "red", "-/+ ": "red", "<= ": "gray"}


class PlanBlock(BaseModel):
    kind: Literal["text", "warning"]
    markdown: str


def plan_blocks(markdown: str) -> list[PlanBlock]:
    """The plan's paragraphs: change lines coloured by what they do (destroying and
    replacing in red), the blockquoted warning as a block of its own."""
    blocks: list[PlanBlock] = []
    for paragraph in markdown.strip().split("\n\n"):
        lines = paragraph.splitlines()
        if lines and all(line.startswith(">") for line in lines):
            blocks.append(PlanBlock(kind="warning", markdown="\n".join(line[1:].lstrip() for line in lines)))
            continue
        blocks.append(PlanBlock(kind="text", markdown="\n".join(_coloured(line) for line in lines)))
    return blocks


def plan_view(markdown: str) -> None:
    for block in plan_blocks(markdown):
        if block.kind == "warning":
            st.error(block.markdown, icon=":material/warning:")
        else:
            st.markdown(block.markdown)


def _coloured(line: str) -> str:
    match = _CHANGE.match(line)
    if match is None:
        return line
    color = _COLORS[match["symbol"]]
    # Plain text, not a code span: Streamlit does not colour code spans.
    text = literal(match["line"])
    # Bold as well as red: colour alone is missed by people who do not see red.
    styled = f"**:{color}[{text}]**" if color == "red" else f":{color}[{text}]"
    return f"- {styled}"

