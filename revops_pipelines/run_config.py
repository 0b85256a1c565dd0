"""Base of the project's run configuration classes (the ``config`` parameter of assets and ops)."""

import dagster as dg
from pydantic import ConfigDict


class RunConfig(dg.Config):
    """A ``dg.Config`` whose pydantic validator is built on first use (when a run is configured), not
    when the class is defined: loading the definitions only reads the fields (Dagster's config
    schema), and building the validators of every config class cost ~0.3 ms each at load."""

    model_config = ConfigDict(defer_build=True)
