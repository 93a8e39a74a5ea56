"""Read template.yaml: the single source for the resources the embedded stack and the tests create."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...) as plain dicts."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)


def resources_of_type(resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource for name, resource in load_template()["Resources"].items() if resource["Type"] == resource_type
    }


def table_properties(logical_id: str = "LoyaltyTable") -> dict[str, Any]:
    return dict(load_template()["Resources"][logical_id]["Properties"])


def create_table_kwargs(table_name: str, logical_id: str = "LoyaltyTable") -> dict[str, Any]:
    """The boto3 `create_table` arguments for a table declared in template.yaml."""
    props = table_properties(logical_id)
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    for key in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes", "StreamSpecification"):
        if key in props:
            kwargs[key] = props[key]
    if "StreamSpecification" in kwargs:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **kwargs["StreamSpecification"]}
    return kwargs
