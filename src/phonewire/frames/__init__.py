"""The frames that flow through a phonewire pipeline, with Pipecat's names.

``core`` holds the transport's frames (lifecycle, audio, DTMF, turn-taking); ``conversation``
the frames a cascaded agent passes between its STT, context aggregators, LLM and TTS;
``metrics`` the measurements processors report. Import them all from here, as a Pipecat bot
imports them from ``pipecat.frames.frames``.
"""

from phonewire.frames.call_control import *  # noqa: F403
from phonewire.frames.call_control import __all__ as _call_control
from phonewire.frames.conversation import *  # noqa: F403
from phonewire.frames.conversation import __all__ as _conversation
from phonewire.frames.core import *  # noqa: F403
from phonewire.frames.core import __all__ as _core
from phonewire.frames.metrics import *  # noqa: F403
from phonewire.frames.metrics import __all__ as _metrics

__all__ = [*_core, *_conversation, *_metrics, *_call_control]
