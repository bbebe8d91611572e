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
from support.bots import KeypadBot
from support.calls import cancel_on_disconnect, fake_rest_api, wait_until
from support.echo_app import make_app
from support.server_harness import serve
from support.wire import VONAGE_CALL_UUID, WireClient, vonage

VONAGE = ["vonage"]
APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def test_a_vonage_call_runs_from_websocket_connected_until_vonage_closes_the_socket() -> None:
    async def main() -> None:
        app, calls = make_app(
            providers=VONAGE,
            handlers=("on_client_connected", "on_client_disconnected"),
            on_transport=cancel_on_disconnect,
        )
        async with serve(app) as hostport:
            headers = {"call_uuid": VONAGE_CALL_UUID, "language": "en-GB", "callerID": "447700900123"}
            client = await WireClient.connect(hostport, vonage(headers))
            await client.handshake()
            await client.stream_audio(tone(440, 0.2, 16000))
            await client.expect_audio()
            await client.close()  # no stop message: the socket closes when the leg ends
            await wait_until(lambda: calls[0].finished, what="the call to finish")
        call = calls[0]
        info = call.transport.call_info
        assert (info.provider, info.call_id, info.from_number) == ("vonage", VONAGE_CALL_UUID, "447700900123")
        assert info.custom_parameters == {
            "call_uuid": VONAGE_CALL_UUID,
            "language": "en-GB",
            "callerID": "447700900123",
        }
        assert info.media_format == MediaFormat("l16", 16000, 1)
        assert [e[0] for e in call.events] == ["on_client_connected", "on_client_disconnected"]
        stats = call.transport.stats
        assert stats.close_reason in ("client disconnected", "send failed")  # whichever side noticed first
        assert stats.hangup == "skipped: call already ended"
        assert stats.protocol_error_count == 0 and stats.internal_errors == 0
        assert stats.audio_in_ms == pytest.approx(200)
        assert call.transport.serializer.irregular_frames == 0
        assert client.violations == []

    asyncio.run(main())


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

    async def main() -> tuple[list[dict[str, Any]], WireClient, str | None, int | None]:
        api, seen = fake_rest_api(204)
        async with serve(api) as api_host:
            kwargs = {
                "application_id": APPLICATION_ID,
                "private_key": pem,
                "params": VonageFrameSerializer.InputParams(base_url=f"http://{api_host}"),
            }
            app, calls = make_app(
                bot=lambda call: KeypadBot(tone(300, 0.3, 24000)), providers=VONAGE, serializer_kwargs=kwargs
            )
            async with serve(app) as hostport:
                client = await WireClient.connect(hostport, vonage())
                await client.handshake()
                await client.dtmf("1")
                await client.dtmf("#")
                code = await client.wait_closed(timeout=5.0)
                await wait_until(lambda: calls[0].finished, what="the call to finish")
        return seen, client, calls[0].transport.stats.hangup, code

    t0 = int(time.time())
    seen, client, outcome, code = asyncio.run(main())
    assert code == 1000
    assert outcome == "done"
    assert len(seen) == 1
    assert (seen[0]["method"], seen[0]["path"]) == ("PUT", f"/v1/calls/{VONAGE_CALL_UUID}")
    assert json.loads(seen[0]["body"]) == {"action": "hangup"}
    assert seen[0]["content_type"] == "application/json"
    assert seen[0]["at"] >= client.audio[-1][0]
    scheme, _, token = seen[0]["authorization"].partition(" ")
    assert scheme == "Bearer"
    header, claims = _jwt_parts(token, key.public_key())
    assert header == {"alg": "RS256", "typ": "JWT"}
    assert claims["application_id"] == APPLICATION_ID
    assert t0 - 1 <= claims["iat"] <= time.time() + 1
    assert claims["iat"] < claims["exp"] <= claims["iat"] + 3600
    assert isinstance(claims["jti"], str) and claims["jti"]


@pytest.mark.parametrize(("rate", "frame"), [(8000, 320), (16000, 640)])
def test_every_vonage_outbound_binary_frame_is_exactly_20_ms(rate: int, frame: int) -> None:
    async def main() -> WireClient:
        # 0.33 s of 24 kHz speech: the tail does not fill a frame and must be padded, not cut short
        app, _ = make_app(bot=lambda call: KeypadBot(tone(300, 0.33, 24000)), providers=VONAGE)
        async with serve(app) as hostport:
            client = await WireClient.connect(hostport, vonage(sample_rate=rate))
            await client.handshake()
            await client.dtmf("1")
            await client.pump(3.0, idle=0.3)
            await client.close()
        return client

    client = asyncio.run(main())
    sizes = [len(m) for _, m in client.received if isinstance(m, bytes)]
    assert len(sizes) == 17  # 16.5 frames of speech, the last one padded with silence
    assert set(sizes) == {frame}
    assert client.violations == []
