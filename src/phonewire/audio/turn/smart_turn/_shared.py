"""One process-wide instance of a class, made on first use (Smart Turn's model and runner)."""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Self

__all__ = ["ProcessShared"]


class ProcessShared:
    """``cls.shared()``: the process-wide instance, built with ``cls()`` on first use; thread-safe
    (double-checked under a lock of the class's own, so building one never waits on another)."""

    _shared_instance: ClassVar[Any] = None
    _shared_lock: ClassVar[threading.Lock]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._shared_instance = None
        cls._shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> Self:
        instance = cls._shared_instance
        if instance is None:
            with cls._shared_lock:
                instance = cls._shared_instance
                if instance is None:
                    instance = cls._shared_instance = cls()
        return instance
