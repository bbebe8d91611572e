"""VADParams: defaults, validation and the dBFS scale behind min_volume."""

from __future__ import annotations

import dataclasses

import pytest

from phonewire.audio.vad import VADParams, dbfs_to_volume, volume_to_dbfs
from phonewire.exceptions import ConfigurationError


def test_defaults_are_the_documented_ones() -> None:
    params = VADParams()
    assert (params.confidence, params.start_secs, params.stop_secs, params.min_volume) == (0.7, 0.2, 0.8, 0.6)


def test_params_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        VADParams().confidence = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("confidence", 0.0),
        ("confidence", 1.01),
        ("confidence", float("nan")),
        ("start_secs", -0.1),
        ("start_secs", 11.0),
        ("stop_secs", -1.0),
        ("stop_secs", float("inf")),
        ("min_volume", -0.01),
        ("min_volume", 1.5),
        ("min_volume", "0.6"),
        ("min_volume", True),
    ],
)
def test_out_of_range_values_raise_a_value_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"VADParams.{field} must be") as raised:
        VADParams(**{field: value})  # type: ignore[arg-type]
    assert isinstance(raised.value, ConfigurationError)


def test_edge_values_are_accepted() -> None:
    VADParams(confidence=1.0, start_secs=0.0, stop_secs=10.0, min_volume=0.0)
    VADParams(confidence=1e-6, start_secs=10, stop_secs=0, min_volume=1)


@pytest.mark.parametrize(("volume", "dbfs"), [(0.0, -110.0), (0.5, -60.0), (0.6, -50.0), (0.8, -30.0), (1.0, -10.0)])
def test_min_volume_maps_linearly_onto_dbfs(volume: float, dbfs: float) -> None:
    assert volume_to_dbfs(volume) == pytest.approx(dbfs)
    assert dbfs_to_volume(dbfs) == pytest.approx(volume)
    assert VADParams(min_volume=volume).min_volume_dbfs == pytest.approx(dbfs)


def test_volume_is_clamped_to_zero_and_one() -> None:
    assert dbfs_to_volume(-200.0) == 0.0
    assert dbfs_to_volume(float("-inf")) == 0.0
    assert dbfs_to_volume(float("nan")) == 0.0
    assert dbfs_to_volume(3.0) == 1.0
