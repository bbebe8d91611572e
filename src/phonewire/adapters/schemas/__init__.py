"""Tool schemas with Pipecat's names (``pipecat.adapters.schemas``)."""

from phonewire.adapters.schemas.function_schema import FunctionSchema, validate_function_name
from phonewire.adapters.schemas.tools_schema import ToolsSchema

__all__ = ["FunctionSchema", "ToolsSchema", "validate_function_name"]
