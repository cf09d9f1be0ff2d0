"""The answer a person gives to a plan: the input that resumes a run waiting for approval.

Prefect's dashboard renders its form from this model; the web page, the CLI and Prefect's
REST API send the same fields.
"""

from prefect.input import RunInput


class Approval(RunInput):
    approve: bool
    comment: str = ""
    by: str = ""
