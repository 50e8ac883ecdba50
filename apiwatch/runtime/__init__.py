"""The composition root and the services it wires: `start.open_runtime` builds a `Runtime`
(`core`) from Settings; `wiring` builds the guarded probe engine; `health` runs checks;
`announce` publishes guard events; `live_status` derives each provider's status;
`retry_chains` follows failed checks up; `access` keeps API keys and their usage; the
others (work sharing, the live feed, metrics, housekeeping, SLOs) are listed with what each
owns in docs/architecture.md.
"""

from apiwatch.runtime.core import Runtime
from apiwatch.runtime.start import open_runtime

__all__ = ["Runtime", "open_runtime"]
