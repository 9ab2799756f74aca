"""FieldMapping: loading from dict, YAML and TOML; validation; CLI defaults."""

from __future__ import annotations

import pytest

from decisionops.agent.errors import ConfigError
from decisionops.agent.sources import FieldMapping

YAML = """\
entity_id: customer_id
score: churn_probability
observed_at: scored_at
id: null
defaults:
  kind: churn
  model: churn-gbm
  entity_type: account
feature_columns: [region, "feat_*"]
explanation_prefix: shap_
timezone: Europe/Paris
"""

TOML = """\
[sources.churn.mapping]
entity_id = "customer_id"
score = "churn_probability"
feature_columns = ["feat_*"]
[sources.churn.mapping.defaults]
kind = "churn"
"""


def test_yaml_file(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(YAML)
    mapping = FieldMapping.from_file(path)
    assert mapping.column("entity_id") == "customer_id"
    assert mapping.column("id") is None
    assert mapping.column("currency") == "currency"  # unset fields keep their own name
    assert mapping.feature_columns == ("region", "feat_*")
    assert mapping.defaults["kind"] == "churn"
    assert mapping.explicit_columns == {"entity_id", "score", "observed_at", "id"}
    assert str(mapping.zone) == "Europe/Paris"


def test_toml_table(tmp_path):
    path = tmp_path / "decisionops.toml"
    path.write_text(TOML)
    mapping = FieldMapping.from_file(path, table="sources.churn.mapping")
    assert mapping.score == "churn_probability"
    assert mapping.defaults == {"kind": "churn"}
    with pytest.raises(ConfigError, match="no table"):
        FieldMapping.from_file(path, table="sources.nope")


@pytest.mark.parametrize(("data", "field"), [
    ({"scroe": "p"}, "scroe"),
    ({"defaults": {"colour": "red"}}, "defaults.colour"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"feature_columns": ["a*b"]}, "feature_columns"),
    ({"score": " "}, "score"),
])
def test_invalid_mapping_names_the_field(data, field):
    with pytest.raises(ConfigError, match=field):
        FieldMapping.from_dict(data)


def test_bad_yaml_is_config_error(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("score: [unclosed\n")
    with pytest.raises(ConfigError, match=r"m\.yaml"):
        FieldMapping.from_file(path)


def test_with_defaults_keeps_explicit_columns_and_ignores_none():
    mapping = FieldMapping(score="p", defaults={"kind": "churn"})
    merged = mapping.with_defaults(model="churn-gbm", kind=None)
    assert merged.defaults == {"kind": "churn", "model": "churn-gbm"}
    assert merged.explicit_columns == {"score"}
    assert mapping.defaults == {"kind": "churn"}  # frozen original untouched
