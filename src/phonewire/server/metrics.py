"""Process-wide counters, exposed at /metrics in Prometheus text format."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from phonewire.transports.stats import TransportStats

__all__ = ["Metrics"]


@dataclass
class Metrics:
    active: int = 0
    calls: int = 0
    refused: int = 0
    rejected: int = 0
    bot_errors: int = 0
    internal_errors: int = 0
    protocol_errors: int = 0
    underruns: int = 0
    audio_in_seconds: float = 0.0
    audio_out_seconds: float = 0.0
    hangups: Counter[str] = field(default_factory=Counter)
    #: Streams accepted but not yet identified (handshake and token pending), per client address.
    pending: int = 0
    pending_by_client: Counter[str] = field(default_factory=Counter)
    #: Hang-ups refused because a call/account id from the peer failed its provider's format.
    invalid_hangup_ids: int = 0

    def record(self, stats: TransportStats) -> None:
        self.internal_errors += stats.internal_errors
        self.protocol_errors += stats.protocol_error_count
        self.underruns += stats.underruns
        self.audio_in_seconds += stats.audio_in_ms / 1000
        self.audio_out_seconds += stats.audio_out_ms / 1000
        self.hangups[(stats.hangup or "none").split(":")[0]] += 1
        if (stats.hangup or "").startswith("skipped: invalid "):
            self.invalid_hangup_ids += 1

    def pending_refusal(self, client: str, total: int, per_client: int) -> str | None:
        """Why one more pending handshake (from ``client``) is refused, or None."""
        if self.pending >= total:
            return f"{self.pending} handshakes pending (max_pending_handshakes)"
        if self.pending_by_client[client] >= per_client:
            return f"{per_client} handshakes pending from one address (max_pending_per_client)"
        return None

    def pending_started(self, client: str) -> None:
        self.pending += 1
        self.pending_by_client[client] += 1

    def pending_ended(self, client: str) -> None:
        self.pending -= 1
        self.pending_by_client[client] -= 1
        if self.pending_by_client[client] <= 0:
            del self.pending_by_client[client]  # the Counter must not grow with every address seen

    def render(self) -> str:
        lines = [
            f"phonewire_active_calls {self.active}",
            f"phonewire_pending_handshakes {self.pending}",
            f"phonewire_calls_total {self.calls}",
            f"phonewire_calls_refused_total {self.refused}",
            f"phonewire_streams_rejected_total {self.rejected}",
            f"phonewire_bot_errors_total {self.bot_errors}",
            f"phonewire_internal_errors_total {self.internal_errors}",
            f"phonewire_protocol_errors_total {self.protocol_errors}",
            f"phonewire_underruns_total {self.underruns}",
            f"phonewire_hangup_invalid_ids_total {self.invalid_hangup_ids}",
            f"phonewire_audio_in_seconds_total {self.audio_in_seconds:.3f}",
            f"phonewire_audio_out_seconds_total {self.audio_out_seconds:.3f}",
        ]
        lines += [f'phonewire_hangups_total{{outcome="{k}"}} {v}' for k, v in sorted(self.hangups.items())]
        return "\n".join(lines) + "\n"
