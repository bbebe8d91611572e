"""The Smart Turn v3.2 ONNX session: one per process, one intra-op thread.

The session is stateless (features in, probability out), so every call in the process shares it.
One thread, like Silero's: an inference is ~50–65 ms of CPU either way, batching does not make it
cheaper per item (services.md §7.6: batch 4 costs 4×), and a multi-threaded pool would spin-wait
cores the event loops need. Inference runs on :class:`~phonewire.audio.turn.smart_turn.runner.
SmartTurnRunner`'s worker, never on the event loop.
"""

from __future__ import annotations

import importlib.resources
import os
from contextlib import suppress

import numpy as np

from phonewire.audio.turn.smart_turn._shared import ProcessShared
from phonewire.audio.vad.silero import TELEMETRY_ENV

__all__ = ["MODEL_FILE", "MODEL_SHA256", "SmartTurnModel"]

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
"""sha256 of the shipped ``data/smart-turn-v3.2-cpu.onnx`` (see ``data/README.md``)."""


class SmartTurnModel(ProcessShared):
    """``predict(features [N, 80, 800]) -> P(complete) [N]``; thread-safe (ORT's ``run`` is).
    ``SmartTurnModel.shared()``: the process-wide instance, loaded on first use (~0.1 s; call
    once at start-up to keep it off the first call's path)."""

    def __init__(self, model: bytes | str | os.PathLike[str] | None = None) -> None:
        os.environ.setdefault(TELEMETRY_ENV, "1")
        import onnxruntime  # deferred: deployments without a turn model never import it here

        with suppress(Exception):
            onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # The model is int8-quantized. On x86-64 CPUs without VNNI (AVX2 only: many AMD EPYC
        # hosts) ORT's u8s8 kernels saturate intermediate sums unless asked not to, and P(complete)
        # drifts (noise: 0.91 instead of the reference 0.765). This keeps every CPU on the
        # reference values; on VNNI CPUs it changes nothing.
        options.add_session_config_entry("session.x64quantprecision", "1")
        source = _shipped_model_bytes() if model is None else model
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        self._session = onnxruntime.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(turn complete) for each item of a float32 ``[N, 80, 800]`` batch (no extra sigmoid:
        the graph's output named ``logits`` is already a probability)."""
        if features.ndim == 2:
            features = features[None]
        (probs,) = self._session.run(None, {"input_features": np.ascontiguousarray(features, dtype=np.float32)})
        return np.asarray(probs, dtype=np.float32).reshape(-1)


def _shipped_model_bytes() -> bytes:
    return importlib.resources.files(__package__).joinpath("data", MODEL_FILE).read_bytes()
