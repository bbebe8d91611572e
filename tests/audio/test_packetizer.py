"""Packetizer: fixed-size packets, nothing lost or reordered, tails padded by policy."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phonewire.audio import ULAW_SILENCE, Packetizer


class Policy(NamedTuple):
    packet_bytes: int
    multiple_of: int
    exact: bool
    pad_byte: int

    def packetizer(self) -> Packetizer:
        return Packetizer(self.packet_bytes, multiple_of=self.multiple_of, exact=self.exact, pad_byte=self.pad_byte)

    def padded_length(self, remainder: int) -> int:
        """Where the policy says a flushed tail of ``remainder`` bytes must end."""
        if self.exact:
            return self.packet_bytes
        return -(-remainder // self.multiple_of) * self.multiple_of


@st.composite
def _policies(draw: st.DrawFn) -> Policy:
    multiple_of = draw(st.sampled_from([1, 2, 4]))
    return Policy(
        packet_bytes=multiple_of * draw(st.integers(min_value=1, max_value=80)),
        multiple_of=multiple_of,
        exact=draw(st.booleans()),
        pad_byte=draw(st.integers(min_value=0, max_value=255)),
    )


PUSHES = st.lists(st.binary(max_size=300), max_size=20)


@given(policy=_policies(), chunks=PUSHES)
def test_packets_plus_the_flushed_tail_reproduce_the_input_plus_padding(policy: Policy, chunks: list[bytes]) -> None:
    packetizer = policy.packetizer()
    packets = [packet for chunk in chunks for packet in packetizer.push(chunk)]
    tail = packetizer.flush() or b""
    stream = b"".join(chunks)
    padding = len(b"".join(packets) + tail) - len(stream)
    assert b"".join(packets) + tail == stream + bytes([policy.pad_byte]) * padding


@given(policy=_policies(), chunks=PUSHES)
def test_every_packet_and_the_tail_obey_the_size_policy(policy: Policy, chunks: list[bytes]) -> None:
    packetizer = policy.packetizer()
    packets = [packet for chunk in chunks for packet in packetizer.push(chunk)]
    remainder = sum(map(len, chunks)) % policy.packet_bytes
    assert packetizer.buffered == remainder
    tail = packetizer.flush()
    assert all(len(packet) == policy.packet_bytes for packet in packets)
    assert (tail is None) if remainder == 0 else (tail is not None and len(tail) == policy.padded_length(remainder))
    assert packetizer.buffered == 0 and packetizer.flush() is None


def test_a_push_smaller_than_a_packet_is_held_until_the_packet_fills() -> None:
    packetizer = Packetizer(160)
    assert packetizer.push(b"a" * 100) == []
    assert packetizer.buffered == 100
    assert packetizer.push(b"b" * 100) == [b"a" * 100 + b"b" * 60]
    assert packetizer.buffered == 40


def test_one_large_push_returns_every_full_packet_in_order() -> None:
    data = bytes(range(256)) * 10
    packets = Packetizer(160).push(data)
    assert len(packets) == 16 and b"".join(packets) == data


def test_exact_mode_pads_the_tail_to_a_full_packet_with_the_pad_byte() -> None:
    packetizer = Packetizer(160, exact=True, pad_byte=ULAW_SILENCE)
    packetizer.push(b"\x00" * 170)
    assert packetizer.flush() == b"\x00" * 10 + b"\xff" * 150


def test_the_tail_is_padded_to_a_whole_sample_when_multiple_of_is_two() -> None:
    packetizer = Packetizer(320, multiple_of=2)
    packetizer.push(b"\x01\x02\x03")
    assert packetizer.flush() == b"\x01\x02\x03\x00"


def test_clear_drops_the_remainder_after_an_interruption() -> None:
    packetizer = Packetizer(160)
    packetizer.push(b"x" * 250)
    packetizer.clear()
    assert packetizer.buffered == 0 and packetizer.flush() is None
    assert packetizer.push(b"y" * 160) == [b"y" * 160]


def test_packets_are_immutable_bytes_independent_of_the_pushed_buffer() -> None:
    packetizer = Packetizer(4)
    source = bytearray(b"abcd")
    packet = packetizer.push(source)[0]
    source[0] = ord("z")
    assert packet == b"abcd" and isinstance(packet, bytes)
    assert packetizer.push(memoryview(b"efghij")) == [b"efgh"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"packet_bytes": 0},
        {"packet_bytes": 160, "multiple_of": 0},
        {"packet_bytes": 161, "multiple_of": 2},
        {"packet_bytes": 160, "pad_byte": 256},
    ],
)
def test_inconsistent_policies_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Packetizer(**kwargs)
