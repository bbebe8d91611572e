"""OpenAILLMService: Chat Completions streaming on the official SDK, for any compatible server.

The I/O is thin: ``chat_stream`` builds the request and assembles the chunks, ``llm_errors``
sorts failures, ``LLMService`` runs tool calls and the apology. What this file owns is time:
one ``AsyncOpenAI`` per service (SDK retries off, so our deadlines hold), a first-token deadline
and a stall deadline per attempt, one bounded retry while nothing has been said yet, and the
HTTP stream closed whenever an attempt ends - including when a barge-in cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import openai

from phonewire.exceptions import ConfigurationError
from phonewire.frames import (
    Frame,
    FrameDirection,
    FunctionCallFromLLM,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    LLMTokenUsage,
    StartFrame,
)
from phonewire.processors.frame_processor import FrameProcessor
from phonewire.services.function_calls import RequestedCall
from phonewire.services.llm_service import DEFAULT_APOLOGY, LLMService
from phonewire.services.openai import llm_errors
from phonewire.services.openai.chat_stream import (
    ChatStreamAssembler,
    ChatStreamError,
    Compat,
    build_request,
    compat_for,
    usage_tokens,
)

__all__ = ["OpenAILLMService"]

logger = logging.getLogger("phonewire.services.openai")
_MAX_REMEMBERED_EXTRA = 256  # tool-call extra_content kept to send back (Gemini's signatures)


@dataclass(slots=True, kw_only=True)
class OpenAILLMInputParams:
    """Pipecat's ``InputParams``: sampling. None leaves the server's default; ``top_k`` and
    anything in ``extra`` go in ``extra_body`` (vLLM, llama.cpp, Ollama read them there)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class OpenAILLMSettings(OpenAILLMInputParams):
    """Pipecat 1.x ``Settings``: the model, a system instruction (prepended when the context
    has no system message) and the sampling parameters."""

    model: str | None = None
    system_instruction: str | None = None


class OpenAILLMService(LLMService):
    Settings = OpenAILLMSettings
    InputParams = OpenAILLMInputParams

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str | None = None,
        settings: OpenAILLMSettings | None = None,
        params: OpenAILLMInputParams | None = None,
        organization: str | None = None,
        project: str | None = None,
        default_headers: dict[str, str] | None = None,
        client: openai.AsyncOpenAI | None = None,
        timeout_secs: float = 30.0,
        connect_timeout_secs: float = 3.0,
        first_token_timeout_secs: float = 2.5,
        stream_timeout_secs: float = 5.0,
        retries: int = 1,
        max_retry_after_secs: float = 1.0,
        supports_stream_options: bool | None = None,
        apology: str | None = DEFAULT_APOLOGY,
        function_call_timeout_secs: float = 10.0,
        retry_timeout_secs: float | None = None,
        retry_on_timeout: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(apology=apology, function_call_timeout_secs=function_call_timeout_secs, **kwargs)
        if client is None and api_key is None and not os.environ.get("OPENAI_API_KEY"):
            raise ConfigurationError("OpenAILLMService needs api_key= or OPENAI_API_KEY (any string for local servers)")
        self._settings = settings or OpenAILLMSettings()
        self.model_name = self._settings.model or model or "gpt-4.1-mini"
        self.metrics.model = self.model_name
        self._params = dataclasses.asdict(params) if params else {}
        self._params.update({k: v for k, v in dataclasses.asdict(self._settings).items() if v not in (None, {})})
        for key in ("model", "system_instruction"):
            self._params.pop(key, None)
        self._api_key = _Secret(api_key) if api_key is not None else None
        self._client_args = {"base_url": base_url, "organization": organization, "project": project}
        self._default_headers = default_headers
        self._client: openai.AsyncOpenAI | None = client
        self._owns_client = client is None
        self.timeout_secs = timeout_secs
        self.connect_timeout_secs = connect_timeout_secs
        self.first_token_timeout_secs = retry_timeout_secs or first_token_timeout_secs
        self.stream_timeout_secs = stream_timeout_secs
        self.retries = retries
        self.retry_on_timeout = retry_on_timeout
        self.max_retry_after_secs = max_retry_after_secs
        self._supports_stream_options = supports_stream_options
        self._compat: Compat | None = None
        self._extra_content: OrderedDict[str, Any] = OrderedDict()
        self.retry_count = 0

    # --- lifecycle ---------------------------------------------------------------------

    def _ensure_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            args = self._client_args
            self._client = openai.AsyncOpenAI(
                api_key=self._api_key.value if self._api_key else None,
                base_url=args["base_url"],
                organization=args["organization"],
                project=args["project"],
                max_retries=0,
                timeout=openai.Timeout(self.timeout_secs, connect=self.connect_timeout_secs),
                default_headers=self._default_headers,
                http_client=openai.DefaultAsyncHttpxClient(verify=_shared_ssl_context()),
            )
        if self._compat is None:
            compat = compat_for(str(self._client.base_url))
            if self._supports_stream_options is not None:
                compat = dataclasses.replace(compat, supports_stream_options=self._supports_stream_options)
            self._compat = compat
            logger.debug("- %s: %s server, model %s", self.name, compat.name, self.model_name)
        return self._client

    async def cleanup(self) -> None:
        await super().cleanup()
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            with contextlib.suppress(Exception):
                await client.close()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if frame.__class__ is InputAudioRawFrame:  # the caller's audio, 50 a second: passed on as is
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, LLMContextFrame):  # consumed, from either direction
            await FrameProcessor.process_frame(self, frame, direction)
            await self._process_context(frame.context)
            return
        if isinstance(frame, StartFrame):
            self._ensure_client()
        await super().process_frame(frame, direction)

    # --- one reply ---------------------------------------------------------------------

    async def _process_context(self, context: Any) -> None:
        """Start, the reply's text, its tool calls, End; on failure End, ErrorFrame, apology.
        A barge-in cancels this coroutine: nothing more is pushed (the interruption ends it)."""
        generation = self._generation
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        turn = _Turn(generation)
        failure = await self._generate(context, turn)
        if not self.is_current(generation):
            return
        assembler = turn.assembler
        requested = self._requested_calls(assembler, context) if failure is None and assembler else []
        if requested:
            await self.announce_function_calls(requested)
        if assembler is not None and assembler.usage:
            await self.start_llm_usage_metrics(LLMTokenUsage(**usage_tokens(assembler.usage)))  # type: ignore[arg-type]
        await self.stop_processing_metrics()
        await self.push_frame(LLMFullResponseEndFrame())
        if requested:
            self.start_function_calls(requested, context)
        if failure is not None:
            await self.fail_turn(failure.kind, failure.detail)

    async def _generate(self, context: Any, turn: _Turn) -> llm_errors.Failure | None:
        retries_left = self.retries
        stream_options_retry = True
        while True:
            request = self._build_request(context)
            try:
                await self._attempt(request, turn)
                return None
            except Exception as exc:  # CancelledError (a barge-in) is not caught: it ends the turn
                if stream_options_retry and "stream_options" in request and llm_errors.is_stream_options_rejection(exc):
                    logger.info("- %s: server refuses stream_options; asking without it", self.name)
                    assert self._compat is not None
                    self._compat = dataclasses.replace(self._compat, supports_stream_options=False)
                    stream_options_retry = False
                    continue
                failure = llm_errors.classify(exc, max_retry_after_secs=self.max_retry_after_secs)
                self.count_error(failure.kind, failure.detail)
                can_retry = failure.retryable and (self.retry_on_timeout or failure.kind != "timeout")
                if not (can_retry and retries_left > 0 and not turn.pushed_text and self.is_current(turn.generation)):
                    return failure
                retries_left -= 1
                self.retry_count += 1
                await asyncio.sleep(failure.delay)

    def _build_request(self, context: Any) -> dict[str, Any]:
        self._ensure_client()
        assert self._compat is not None
        messages = context.get_messages() if hasattr(context, "get_messages") else context.messages
        return build_request(
            model=self.model_name,
            messages=messages,
            tools=getattr(context, "tools", None),
            tool_choice=getattr(context, "tool_choice", None),
            params=self._params,
            system_instruction=self._settings.system_instruction,
            compat=self._compat,
            extra_content=self._extra_content,
        )

    async def _attempt(self, request: dict[str, Any], turn: _Turn) -> None:
        """One request: raises on any failure; the HTTP stream is closed however it ends."""
        client = self._ensure_client()
        loop = asyncio.get_running_loop()
        first_deadline = loop.time() + self.first_token_timeout_secs
        turn.assembler = assembler = ChatStreamAssembler()
        await self.start_ttfb_metrics()
        try:
            async with asyncio.timeout_at(first_deadline):
                stream = await _open_stream(client, request)
        except TimeoutError:
            raise llm_errors.LLMTimeout(f"no response within {self.first_token_timeout_secs:g}s") from None
        try:
            while True:
                started = turn.first_token_at is not None
                deadline = loop.time() + self.stream_timeout_secs if started else first_deadline
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await stream.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    what = f"stream stalled for {self.stream_timeout_secs:g}s" if started else "no first token"
                    raise llm_errors.LLMTimeout(f"{what} (within {self.first_token_timeout_secs:g}s)") from None
                if not isinstance(chunk, Mapping):
                    raise ChatStreamError(f"a stream chunk that is not a JSON object: {type(chunk).__name__}")
                text = assembler.feed(chunk)
                if turn.first_token_at is None and (text or assembler.has_tool_calls):
                    turn.first_token_at = loop.time()
                    await self.stop_ttfb_metrics()
                    await self.push_first_token_stage()
                if text and self.is_current(turn.generation):
                    turn.pushed_text = True
                    await self.push_frame(LLMTextFrame(text=text))
        finally:
            await _close(stream)
        if assembler.finish_reason is None and not assembler.has_tool_calls:
            raise llm_errors.TruncatedStream()

    def _requested_calls(self, assembler: ChatStreamAssembler, context: Any) -> list[RequestedCall]:
        requested = []
        for call in assembler.tool_calls():
            arguments, problem = call.parse_arguments()
            if call.extra:
                self._remember_extra(call.id, call.extra.get("extra_content"))
            function = FunctionCallFromLLM(
                function_name=call.name, tool_call_id=call.id, arguments=arguments or {}, context=context
            )
            requested.append(RequestedCall(call=function, problem=problem, message_call=call.as_message_call()))
        return requested

    def _remember_extra(self, call_id: str, extra: Any) -> None:
        if extra is None:
            return
        self._extra_content[call_id] = extra
        while len(self._extra_content) > _MAX_REMEMBERED_EXTRA:
            self._extra_content.popitem(last=False)

    def __repr__(self) -> str:  # never the key
        return f"<{self.name} model={self.model_name!r}>"


class _Secret:
    """Holds the API key for the lazily created client; its repr never shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


@dataclass(slots=True)
class _Turn:
    generation: int
    pushed_text: bool = False
    first_token_at: float | None = None
    assembler: ChatStreamAssembler | None = None


_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    """The SDK's default TLS context, built once per process: each client building its own loads
    the CA bundle again, ~30 ms of CPU on the event loop at every call's start (a stall for every
    other call). The environment (``SSL_CERT_FILE``...) is read at the first use."""
    global _ssl_context
    if _ssl_context is None:
        try:
            import httpx2 as http  # the SDK's HTTP library from openai 3
        except ImportError:  # pragma: no cover - older SDKs use httpx
            import httpx as http  # type: ignore[no-redef]
        _ssl_context = http.create_ssl_context()
    return _ssl_context


async def _open_stream(client: openai.AsyncOpenAI, request: dict[str, Any]) -> Any:
    """``client.chat.completions.create(**request)`` as the SDK sends it, less two costs per
    request: its walk of the body against the params' TypedDicts (``build_request`` made it
    JSON-ready already; ~8 ms of CPU for a 20-message context, before the request goes out) and a
    pydantic model built per chunk only to be turned back into a dict: the chunks come as the
    server's JSON objects. ``client.post`` is the SDK's documented way to an endpoint; status
    errors, timeouts and the SSE parsing are the SDK's own."""
    body = dict(request)
    extra_body = body.pop("extra_body", None)
    options: Any = {"extra_json": extra_body} if extra_body else {}
    return await client.post(
        "/chat/completions",
        body=body,
        options=options,
        cast_to=object,
        stream=True,
        stream_cls=openai.AsyncStream[object],
    )


async def _close(stream: Any) -> None:
    """Close the SDK's iterator first, then the response (Pipecat's order: no socket leak and no
    async-generator finalised later by the loop)."""
    iterator = getattr(stream, "_iterator", None)
    with contextlib.suppress(Exception):
        if iterator is not None and hasattr(iterator, "aclose"):
            await iterator.aclose()
        await stream.close()
