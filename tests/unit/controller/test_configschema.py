"""The configSchema validator accepts conforming configs and names each broken rule."""

from decnet.controller import configschema

SCHEMA = {
    "type": "object",
    "properties": {
        "workgroup": {"type": "string", "pattern": "^[A-Z]+$"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "mode": {"type": "string", "enum": ["a", "b"]},
        "banner": {"type": "string"},
    },
    "required": ["workgroup"],
}


def test_valid_config_passes() -> None:
    assert configschema.errors({"workgroup": "CORP", "port": 445, "mode": "a"}, SCHEMA) == []
    assert configschema.errors({"anything": 1}, None) == []


def test_each_rule_is_reported() -> None:
    errs = configschema.errors(
        {"workgroup": "corp", "port": 0, "mode": "z", "extra": 1}, SCHEMA, "smb"
    )
    text = "\n".join(errs)
    assert "smb.workgroup: must match pattern" in text
    assert "smb.port: must be >= 1" in text
    assert "smb.mode: must be one of" in text
    assert "smb.extra: unknown field" in text
    assert configschema.errors({}, SCHEMA) == ["config: missing required field workgroup"]
    assert configschema.errors({"workgroup": "A", "port": True}, SCHEMA) == [
        "port: must be of type integer"
    ]


def test_messages_never_echo_values() -> None:
    errs = configschema.errors({"workgroup": "s3cr3t-pass"}, SCHEMA)
    assert errs and all("s3cr3t" not in e for e in errs)


def test_additional_properties_true_allows_unknown_keys() -> None:
    schema = {**SCHEMA, "additionalProperties": True}
    assert configschema.errors({"workgroup": "A", "extra": 1}, schema) == []


def test_lengths_and_item_counts_are_checked() -> None:
    from decnet.controller import configschema as cs

    schema = {
        "type": "object",
        "properties": {
            "workgroup": {"type": "string", "maxLength": 15, "minLength": 1},
            "shares": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
        },
    }
    assert cs.errors({"workgroup": "CORP", "shares": ["a"]}, schema) == []
    assert cs.errors({"workgroup": "W" * 16}, schema) == [
        "workgroup: must be at most 15 characters"
    ]
    assert cs.errors({"workgroup": ""}, schema) == ["workgroup: must be at least 1 characters"]
    assert cs.errors({"shares": ["a", "b", "c"]}, schema) == ["shares: must have at most 2 items"]
