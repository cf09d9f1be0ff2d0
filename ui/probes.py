"""Each service's last answer while a cluster is provisioning, read from its run's logs.

The prober probes JupyterHub and FreeIPA with retrying tasks (tasks/probe.py) and logs each
answer to the build run: a failed attempt as "<service> at <url>: <answer>", the successful
one as "<service> is up at <url>: <answer>".
"""

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from pydantic import BaseModel


class ProbeAnswer(BaseModel):
    service: str
    url: str
    answer: str
    """"HTTP 503 'starting'", "no answer (ConnectError: …)", or "not probed yet"."""
    at: datetime | None = None
    up: bool = False


class LogLine(BaseModel):
    """The part of a Prefect log this module reads."""

    message: str
    timestamp: datetime


def last_answers(service_urls: Mapping[str, str], logs: Iterable[LogLine]) -> list[ProbeAnswer]:
    """The newest answer of each service among `logs` (oldest first)."""
    answers = {service: ProbeAnswer(service=service, url=url, answer="not probed yet") for service, url in service_urls.items()}
    for log in logs:
        for service, url in service_urls.items():
            found = _answer(log.message, service, url)
            if found is not None:
                text, up = found
                answers[service] = ProbeAnswer(service=service, url=url, answer=text, at=log.timestamp, up=up)
    return list(answers.values())


def _answer(message: str, service: str, url: str) -> tuple[str, bool] | None:
    up = re.fullmatch(rf"{re.escape(service)} is up at {re.escape(url)}: (?P<answer>.*)", message)
    if up:
        return up["answer"], True
    failed = re.fullmatch(rf"{re.escape(service)} at {re.escape(url)}: (?P<answer>.*)", message)
    if failed:
        return failed["answer"], False
    return None
