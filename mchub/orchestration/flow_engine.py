"""`python -m mchub.orchestration.flow_engine`: Prefect's engine (`python -m prefect.engine`), run by
the warm engines in a fork of a process that imported Prefect long before this run's
environment existed: Prefect's and MC Hub's settings are read again from it first. Run as
a new process (the launcher's fallback), the re-reading changes nothing."""

import runpy
import warnings

from prefect.context import refresh_global_settings_context

from mchub.settings import get_settings

refresh_global_settings_context()
get_settings.cache_clear()
# The warm engines imported prefect.engine on purpose; runpy would warn of it in every run's log.
warnings.filterwarnings("ignore", message="'prefect.engine' found in sys.modules", category=RuntimeWarning)
runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
