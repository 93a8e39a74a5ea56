"""template.yaml's table and the pynamodb models describe the same table: keys, indexes and stream."""

from __future__ import annotations

from typing import Any

from infra.local.template import table_properties
from loyalty.adapters.dynamodb.models import LoyaltyItem


def _keys(key_schema: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(key["AttributeName"], key["KeyType"]) for key in key_schema}


def _indexes(indexes: list[dict[str, Any]], name_key: str, keys_key: str, projection_key: str) -> dict[str, Any]:
    return {index[name_key]: (_keys(index[keys_key]), index[projection_key]["ProjectionType"]) for index in indexes}


def test_template_table_matches_the_models() -> None:
    # Given the table as SAM deploys it and as the models see it
    template = table_properties()
    models = LoyaltyItem._get_schema()
    # Then key schema, attribute types and every index (keys and projection) agree
    assert _keys(template["KeySchema"]) == _keys(models["key_schema"])
    assert {(a["AttributeName"], a["AttributeType"]) for a in template["AttributeDefinitions"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in models["attribute_definitions"]
    }
    assert _indexes(template["LocalSecondaryIndexes"], "IndexName", "KeySchema", "Projection") == _indexes(
        models["local_secondary_indexes"], "index_name", "key_schema", "projection"
    )
    assert _indexes(template["GlobalSecondaryIndexes"], "IndexName", "KeySchema", "Projection") == _indexes(
        models["global_secondary_indexes"], "index_name", "key_schema", "projection"
    )


def test_template_table_streams_new_and_old_images() -> None:
    # The CRM sync reads the stream and needs both images to push only what changed
    assert table_properties()["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
