"""Horizon-style quota bars: for each quota, what other clusters use, what this cluster
needs, and what is left; red, with the shortfall said in words, when the cluster does not fit.
"""

from html import escape

import streamlit as st
from pydantic import BaseModel

from mchub.cloud.quota import QuotaLine

_TITLES = {"ram": "RAM"}
_STYLE = """
<style>
.mchub-quota { margin: 0 0 0.9rem 0; font-size: 0.9rem; }
.mchub-quota .head { display: flex; justify-content: space-between; }
.mchub-quota .bar { display: flex; height: 0.8rem; border-radius: 0.4rem; overflow: hidden;
  background: #e6e9ef; margin: 0.2rem 0; }
.mchub-quota .others { background: #9aa3b1; }
.mchub-quota .cluster { background: #1c83e1; }
.mchub-quota.over .cluster { background: #e03131; }
.mchub-quota .legend { color: #5f6672; font-size: 0.8rem; }
.mchub-quota .shortfall { color: #c92a2a; font-weight: 600; font-size: 0.85rem; }
</style>
"""


class Bar(BaseModel):
    """One quota in the units a person reads (GB rather than MB)."""

    title: str
    unit: str
    limit: float | None
    """None: unlimited."""
    others: float
    cluster: float
    shortfall: str | None

    @property
    def free(self) -> float | None:
        return None if self.limit is None else max(self.limit - self.others - self.cluster, 0)

    def percent(self, amount: float) -> float:
        if not self.limit:
            return 0.0
        return min(100.0, 100.0 * amount / self.limit)

    def legend(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        free = "no limit" if self.free is None else f"{_number(self.free)}{unit} free"
        return f"others {_number(self.others)}{unit} · this cluster {_number(self.cluster)}{unit} · {free}"


def bar_of(line: QuotaLine) -> Bar:
    quota = line.quota
    scale, unit = (1024, "GB") if quota.unit == "MB" else (1, quota.unit)
    return Bar(
        title=_TITLES.get(quota.name, quota.name[:1].upper() + quota.name[1:]),
        unit=unit,
        limit=None if quota.free is None else _rounded(quota.limit, scale),
        others=_rounded(line.used_by_others, scale),
        cluster=_rounded(line.needed, scale),
        shortfall=line.shortfall.message if line.shortfall else None,
    )


def bar_html(bar: Bar) -> str:
    used = _number(bar.others + bar.cluster) + (f" of {_number(bar.limit)}" if bar.limit is not None else "")
    unit = f" {bar.unit}" if bar.unit else ""
    # The cluster's part is cut at what is left, so an over-quota request fills the bar red.
    cluster_width = min(bar.percent(bar.cluster), 100.0 - bar.percent(bar.others))
    shortfall = f'<div class="shortfall">{escape(bar.shortfall)}</div>' if bar.shortfall else ""
    return (
        f'<div class="mchub-quota{" over" if bar.shortfall else ""}">'
        f'<div class="head"><b>{escape(bar.title)}</b><span>{used}{escape(unit)}</span></div>'
        f'<div class="bar" role="img" aria-label="{escape(bar.legend())}">'
        f'<span class="others" style="width:{bar.percent(bar.others):.1f}%"></span>'
        f'<span class="cluster" style="width:{cluster_width:.1f}%"></span></div>'
        f'<div class="legend">{escape(bar.legend())}</div>{shortfall}</div>'
    )


def quota_bars(lines: list[QuotaLine]) -> None:
    """Draw the bars of every quota."""
    st.markdown(_STYLE + "".join(bar_html(bar_of(line)) for line in lines), unsafe_allow_html=True)


def _rounded(amount: int, scale: int) -> float:
    return round(amount / scale, 1)


def _number(amount: float) -> str:
    return f"{amount:g}"
