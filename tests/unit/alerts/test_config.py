"""The alerting and notifications sections: strict, references checked, secrets kept secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakglass.config import load_config
from breakglass.errors import ConfigError

GOOD = """
protocol: perp
alerting:
  routes:
    - matchers: ["severity>=critical"]
      receivers: [pager]
  inhibit_rules:
    - name: venue-paused
      source: ["monitor=venue-paused"]
      target: ["kind=liquidation"]
notifications:
  channels:
    - name: pager
      url: pagerduty://integration-key-0123456789@routing-key
      template: short
    - name: soc
      kind: webhook
      url: https://soc.example/hooks/abc
      secret: whsec-9876543210
  templates:
    - name: short
      title: "{{ incident.id }}"
      body: "{{ event }}"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "breakglass.yaml"
    path.write_text(text)
    return path


def test_a_complete_section_loads_and_its_urls_and_secrets_reach_the_redactor(tmp_path: Path) -> None:
    loaded = load_config(_write(tmp_path, GOOD))
    channels = loaded.settings.notifications.channels
    assert [c.name for c in channels] == ["pager", "soc"]
    assert "whsec-9876543210" in loaded.secrets
    assert "pagerduty://integration-key-0123456789@routing-key" in loaded.secrets
    assert "whsec" not in repr(loaded.settings) and "integration-key" not in repr(loaded.settings)


def test_an_unknown_channel_in_a_route_is_located_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, GOOD.replace("receivers: [pager]", "receivers: [pagr]")))
    (issue,) = caught.value.issues
    assert issue.line == 6 and issue.path == "alerting.routes[0].receivers[0]"
    assert "unknown channel 'pagr'" in issue.message and "did you mean 'pager'?" in issue.message


def test_a_bad_matcher_and_an_unknown_key_are_both_reported(tmp_path: Path) -> None:
    text = GOOD.replace('["severity>=critical"]', '["severity>=dire"]').replace(
        "  inhibit_rules:", "  group_windw: 60\n  inhibit_rules:"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text))
    messages = [f"{i.path}: {i.message}" for i in caught.value.issues]
    assert any("unknown severity 'dire'" in m for m in messages)
    assert any("unknown key 'group_windw'" in m and "group_window" in m for m in messages)


def test_a_channel_url_from_the_environment_without_a_scheme_is_refused_unechoed(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("https://soc.example/hooks/abc", "${SOC_URL}"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"SOC_URL": "soc.example/hooks/abc"})
    (issue,) = caught.value.issues
    assert issue.path == "notifications.channels[1].url" and "scheme" in issue.message
    assert "soc.example" not in str(caught.value)
