"""Tool schemas turn into exactly what the OpenAI SDK types accept; bad names fail early."""

from __future__ import annotations

import json

import pytest
from openai.types.chat import ChatCompletionToolParam
from pydantic import TypeAdapter

from phonewire.adapters.schemas import FunctionSchema, ToolsSchema
from phonewire.exceptions import ConfigurationError
from phonewire.processors.aggregators import LLMContext

LOOKUP = FunctionSchema(
    name="lookup_order",
    description="Find an order by id",
    properties={"order_id": {"type": "string"}},
    required=["order_id"],
)


def test_tools_schema_gives_openai_function_tools() -> None:
    tools = ToolsSchema(standard_tools=[LOOKUP, FunctionSchema("get_time", "The time now")]).to_openai_tools()
    adapter = TypeAdapter(list[ChatCompletionToolParam])
    adapter.validate_python(tools)
    assert tools[0] == {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order by id",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        },
    }
    json.dumps(tools)


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "dot.name", "ünï"])
def test_invalid_function_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="a-z, A-Z, 0-9"):
        FunctionSchema(name, "d")


def test_duplicates_and_unknown_required_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="two tools"):
        ToolsSchema([LOOKUP, LOOKUP])
    with pytest.raises(ConfigurationError, match="required"):
        FunctionSchema("f", "d", properties={}, required=["x"])


def test_context_takes_a_tools_schema_and_serialises() -> None:
    context = LLMContext([{"role": "user", "content": "hi"}], tools=ToolsSchema([LOOKUP]), tool_choice="auto")
    assert context.tools is not None and context.tools[0]["function"]["name"] == "lookup_order"
    copy = context.get_messages()
    copy[0]["content"] = "changed"
    assert context.messages[0]["content"] == "hi"
    assert json.loads(json.dumps(context.to_json_dict()))["tool_choice"] == "auto"
    with pytest.raises(ConfigurationError):
        context.set_tool_choice("sometimes")
    with pytest.raises(ConfigurationError):
        context.add_message({"content": "no role"})
