"""kafka.topic templates over container labels: rendering, defaults, sanitising, bad templates."""

from __future__ import annotations

import pytest

from hostwatch.core.config import ConfigError, from_mapping
from logshipper.config import KafkaConfig, ShipperConfig
from logshipper.sinks.kafka import topic_for
from logshipper.sinks.topic import MAX_TOPIC_LENGTH, TopicTemplate


@pytest.mark.parametrize("template, labels, topic", [
    ("hostwatch-logs", {"app": "web"}, "hostwatch-logs"),
    ("logs-{labels.app|default}", {"app": "web"}, "logs-web"),
    ("logs-{labels.app|default}", {}, "logs-default"),
    ("logs-{labels.app|default}", {"app": ""}, "logs-default"),  # empty counts as missing
    ("logs-{labels.app}", {}, "logs-"),
    ("{labels.com.docker.compose.project|misc}.{labels.com.docker.compose.service|x}",
     {"com.docker.compose.project": "shop", "com.docker.compose.service": "cart"}, "shop.cart"),
    ("logs-{labels.team|none}-{labels.app|none}", {"app": "api"}, "logs-none-api"),
    ("logs-{labels.app|d}", {"app": "we b/ü:1"}, "logs-we_b___1"),  # illegal topic characters become _
    ("{labels.app|x}{labels.team}", {}, "x"),
])
def test_topic_for_renders_labels(template: str, labels: dict[str, str], topic: str) -> None:
    assert topic_for(template, labels) == topic


def test_rendered_topics_are_cut_at_kafka_limit_and_cached_per_label_values() -> None:
    t = TopicTemplate("logs-{labels.app|x}")
    long_topic = t.render({"app": "a" * 500})
    assert len(long_topic) == MAX_TOPIC_LENGTH and long_topic.startswith("logs-aaa")
    assert t.render({"app": "web", "other": "ignored"}) == t.render({"app": "web"}) == "logs-web"
    assert not t.static and TopicTemplate("plain").static


@pytest.mark.parametrize("template, complaint", [
    ("logs-{app}", "is not a placeholder"),
    ("logs-{labels.}", "is not a placeholder"),
    ("logs-{labels.app", "unbalanced brace"),
    ("logs-labels.app}", "unbalanced brace"),
    ("logs {labels.app}", "characters a Kafka topic cannot have"),
    ("logs-{labels.app|de fault}", "characters a Kafka topic cannot have"),
    ("", "empty"),
    ("{labels.app}", "can render empty"),
    ("{labels.app}{labels.team|}", "can render empty"),
])
def test_bad_templates_are_config_errors(template: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        KafkaConfig(topic=template)
    with pytest.raises(ConfigError, match="topic"):
        from_mapping(ShipperConfig, {"kafka": {"topic": template}}, "shipper.yaml")


def test_a_good_template_loads_from_yaml_mapping() -> None:
    cfg = from_mapping(ShipperConfig, {"kafka": {"topic": "logs-{labels.app|default}", "brokers": ["k:9092"]}},
                       "shipper.yaml")
    assert cfg.kafka.topic == "logs-{labels.app|default}"
    assert topic_for(cfg.kafka.topic, {"app": "db"}) == "logs-db"
