"""End-of-turn analyzers: is the caller done, or only pausing? (Pipecat's ``audio.turn``.)"""

from phonewire.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, EndOfTurnState, TurnVerdict

__all__ = ["BaseTurnAnalyzer", "EndOfTurnState", "TurnVerdict"]
