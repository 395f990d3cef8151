"""The base of every validated configuration class (run configs and model configs)."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A pydantic model that rejects unknown keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
