"""Whisper's default compute type follows the CPU: int8 mishears on AVX2 without VNNI."""

from __future__ import annotations

from phonewire.services.local.whisper import default_compute_type


def test_int8_only_where_the_cpu_has_vnni_or_is_not_avx2() -> None:
    assert default_compute_type("flags : fpu sse2 avx avx2 fma") == "float32"  # AMD EPYC (Zen 2/3)
    assert default_compute_type("flags : avx2 avx512f avx512_vnni") == "int8"
    assert default_compute_type("flags : avx2 avx_vnni") == "int8"
    assert default_compute_type("Features : fp asimd evtstrm") == "int8"  # aarch64
