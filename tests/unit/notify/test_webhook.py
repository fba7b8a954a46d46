"""Signed webhooks and Apprise channels against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest

from breakglass.config.alerting import NotificationsConfig
from breakglass.errors import NotifyError
from breakglass.notify.channels import AppriseChannel, build_channels
from breakglass.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, sign, verify
from breakglass.testing import HttpReceiver

SECRET = "whsec-test-0123456789"


async def test_a_webhook_body_verifies_with_the_shared_secret() -> None:
    with HttpReceiver() as receiver:
        channel = WebhookChannel("soc", receiver.url + "/hook", SECRET)
        await channel.send("title", "text", {"event": "opened", "incident": {"id": "inc-1"}})
        await channel.close()
    (request,) = receiver.requests
    assert request.path == "/hook"
    assert verify(SECRET, request.headers, request.body)
    document = json.loads(request.body)
    assert document["event"] == "opened" and document["title"] == "title"
    assert not verify("another-secret", request.headers, request.body)
    assert not verify(SECRET, request.headers, request.body + b" ")


def test_a_stale_or_unsigned_request_does_not_verify() -> None:
    body = b"{}"
    old = int(time.time()) - 3600
    headers = {TIMESTAMP_HEADER: str(old), SIGNATURE_HEADER: sign(SECRET, old, body)}
    assert not verify(SECRET, headers, body)
    assert verify(SECRET, headers, body, now=old + 10)
    assert not verify(SECRET, {}, body)


async def test_a_server_error_is_recoverable_and_a_client_error_is_not() -> None:
    with HttpReceiver(statuses=[503, 404]) as receiver:
        channel = WebhookChannel("soc", receiver.url, SECRET)
        with pytest.raises(NotifyError) as first:
            await channel.send("t", "b", {})
        with pytest.raises(NotifyError) as second:
            await channel.send("t", "b", {})
        await channel.close()
    assert first.value.recoverable and "HTTP 503" in str(first.value)
    assert not second.value.recoverable


async def test_an_unreachable_webhook_error_does_not_show_its_url() -> None:
    with HttpReceiver() as receiver:
        url = receiver.url + "/hooks/secret-token-abcdef"
    channel = WebhookChannel("soc", url)  # the server is gone: connection refused
    with pytest.raises(NotifyError) as caught:
        await channel.send("t", "b", {})
    await channel.close()
    assert caught.value.recoverable
    assert "secret-token" not in str(caught.value) and "secret-token" not in repr(channel)


async def test_an_apprise_json_url_delivers_title_and_body() -> None:
    with HttpReceiver() as receiver:
        channel = AppriseChannel("ops", receiver.url.replace("http://", "json://") + "/apprise")
        await channel.send("[HIGH] perp: oracle", "incident inc-1 detected", {})
    (request,) = receiver.requests
    assert request.path == "/apprise"
    document = json.loads(request.body)
    assert (document["title"], document["message"]) == ("[HIGH] perp: oracle", "incident inc-1 detected")


async def test_an_apprise_failure_is_a_recoverable_notify_error() -> None:
    with HttpReceiver(statuses=[500]) as receiver:
        channel = AppriseChannel("ops", receiver.url.replace("http://", "json://"))
        with pytest.raises(NotifyError) as caught:
            await channel.send("t", "b", {})
    assert caught.value.recoverable


def test_an_unknown_apprise_scheme_is_refused_without_echoing_the_url() -> None:
    with pytest.raises(NotifyError) as caught:
        AppriseChannel("ops", "nosuchscheme://user:hunter2@host/path?token=abcdef")
    assert "hunter2" not in str(caught.value) and "abcdef" not in str(caught.value)
    assert not caught.value.recoverable


def test_channels_are_built_from_configuration_with_secret_urls() -> None:
    config = NotificationsConfig.model_validate(
        {
            "channels": [
                {"name": "soc", "kind": "webhook", "url": "https://x/hook", "secret": "s3cr3t-value"},
                {"name": "ops", "url": "json://127.0.0.1:9/x"},
            ]
        }
    )
    channels = build_channels(config)
    assert isinstance(channels["soc"], WebhookChannel) and isinstance(channels["ops"], AppriseChannel)
    assert "s3cr3t" not in repr(config)
