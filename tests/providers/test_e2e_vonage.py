"""Vonage end to end through a real server: the call, the JWT-signed hang-up, and Vonage's exact
20 ms binary frames (rates and DTMF: test_e2e_media.py; notify and clear: test_e2e_playback.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from phonewire.audio.analysis import tone
from phonewire.serializers.base import MediaFormat
from phonewire.serializers.vonage import VonageFrameSerializer
from support.provider_calls import CLOSED_BY_PEER, assert_clean_call, echo_call, rest_goodbye_call, utterance
from support.wire import VONAGE_CALL_UUID, vonage

APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def test_a_vonage_call_runs_from_websocket_connected_until_vonage_closes_the_socket() -> None:
    headers = {"call_uuid": VONAGE_CALL_UUID, "language": "en-GB", "callerID": "447700900123"}
    # no stop message: the socket closes when the leg ends
    call, wire = asyncio.run(echo_call("vonage", vonage(headers), pcm=tone(440, 0.2, 16000), send_stop=False))
    assert call.transport is not None
    info = call.transport.call_info
    assert (info.provider, info.call_id, info.from_number) == ("vonage", VONAGE_CALL_UUID, "447700900123")
    assert info.custom_parameters == headers
    assert info.media_format == MediaFormat("l16", 16000, 1)
    stats = call.transport.stats
    assert stats.close_reason in CLOSED_BY_PEER
    assert stats.hangup == "skipped: call already ended"
    assert call.transport.serializer.irregular_frames == 0
    assert_clean_call(call, wire, audio_in_ms=200)


def _jwt_parts(token: str, public_key: RSAPublicKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify an RS256 JWT's signature; return its header and claims."""

    def unb64(segment: str) -> bytes:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))

    header, claims, signature = token.split(".")
    public_key.verify(unb64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return json.loads(unb64(header)), json.loads(unb64(claims))


def test_hang_up_puts_hangup_to_the_vonage_call_with_an_rs256_application_jwt() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()

    def kwargs(base_url: str) -> dict[str, Any]:
        params = VonageFrameSerializer.InputParams(base_url=base_url)
        return {"application_id": APPLICATION_ID, "private_key": pem, "params": params}

    t0 = int(time.time())
    request = rest_goodbye_call("vonage", vonage(), kwargs, status=204)
    assert (request["method"], request["path"]) == ("PUT", f"/v1/calls/{VONAGE_CALL_UUID}")
    assert json.loads(request["body"]) == {"action": "hangup"}
    assert request["content_type"] == "application/json"
    scheme, _, token = request["authorization"].partition(" ")
    assert scheme == "Bearer"
    header, claims = _jwt_parts(token, key.public_key())
    assert header == {"alg": "RS256", "typ": "JWT"}
    assert claims["application_id"] == APPLICATION_ID
    assert t0 - 1 <= claims["iat"] <= time.time() + 1
    assert claims["iat"] < claims["exp"] <= claims["iat"] + 3600
    assert isinstance(claims["jti"], str) and claims["jti"]


@pytest.mark.parametrize(("rate", "frame"), [(8000, 320), (16000, 640)])
def test_every_vonage_outbound_binary_frame_is_exactly_20_ms(rate: int, frame: int) -> None:
    # 0.33 s of 24 kHz speech: the tail does not fill a frame and must be padded, not cut short
    client = asyncio.run(utterance("vonage", vonage(sample_rate=rate), 0.33))
    sizes = [len(m) for _, m in client.received if isinstance(m, bytes)]
    assert len(sizes) == 17  # 16.5 frames of speech, the last one padded with silence
    assert set(sizes) == {frame}
    assert client.violations == []
