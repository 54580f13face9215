"""JSON Schemas for SWOP YAML files (``<name>.schema.json``) and the validator that reads them."""

from swarmlearning.schemas import validate as _validate
from swarmlearning.schemas.validate import *  # noqa: F403 - the validator's public names

__all__ = _validate.__all__
