"""The Contact and Task schema of a real org, and the programme's custom objects, as the local Salesforce emulator
needs them.

Custom fields are read from the SFDX metadata in infra/salesforce (every
`objects/Contact/fields/*.field-meta.xml`, and for Task every `objects/Activity/fields/*.field-meta.xml`,
of every package directory in sfdx-project.json), so the emulator knows exactly the fields a deployed org
would have and a wrong field name fails here as it would there. Task and Event share their custom fields:
Salesforce defines them once on Activity, and SFDX source keeps them under `objects/Activity/fields/`.
Standard fields the plugin touches are added from the lists below, with the types and lengths a real org
reports. Each custom object (`objects/<Name>__c/` with its `.object-meta.xml`) gets its Id and Name (an auto
number: not writable) and its fields. Pure stdlib: no network, no Salesforce tooling.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "salesforce"
METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
FIELD_SUFFIX = ".field-meta.xml"

# The field types the emulator understands. Custom fields in the metadata may only use these (a Lookup is a
# Reference to a record).
CUSTOM_TYPES = frozenset({"Text", "Number", "Date", "DateTime", "Checkbox", "Picklist", "Lookup"})
SCHEMA_TYPES = CUSTOM_TYPES | {"Id", "Email", "Phone", "Reference"}


class SalesforceMetadataError(ValueError):
    """The metadata in infra/salesforce is malformed or would not deploy; the message names the file."""


@dataclass(frozen=True)
class SchemaField:
    name: str  # API name, e.g. Loyalty_Points__c
    type: str  # one of SCHEMA_TYPES
    length: int | None = None  # Text, Email, Phone, Id and Reference only
    picklist_values: tuple[str, ...] = ()  # API values in the order of the metadata
    external_id: bool = False
    unique: bool = False
    updateable: bool = True


_ID = SchemaField("Id", "Id", length=18, updateable=False)

# Standard Contact fields the plugin reads or writes, as a real org describes them.
_STANDARD_CONTACT_FIELDS: tuple[SchemaField, ...] = (
    _ID,
    SchemaField("FirstName", "Text", length=40),
    SchemaField("LastName", "Text", length=80),
    SchemaField("Email", "Email", length=80),
    SchemaField("MobilePhone", "Phone", length=40),
    SchemaField("Birthdate", "Date"),
    SchemaField("HasOptedOutOfEmail", "Checkbox"),
    SchemaField("AccountId", "Reference", length=18),
    SchemaField("OwnerId", "Reference", length=18),
    SchemaField("LastModifiedDate", "DateTime", updateable=False),
    SchemaField("CreatedDate", "DateTime", updateable=False),
)

# Standard Task fields the programme uses to record sent offers. Type has SMS added: a real org ships
# Call, Email, Meeting and Other, and its admin adds SMS (see infra/salesforce/README.md).
_STANDARD_TASK_FIELDS: tuple[SchemaField, ...] = (
    _ID,
    SchemaField("WhoId", "Reference", length=18),
    SchemaField("Subject", "Text", length=255),
    SchemaField("Status", "Picklist", picklist_values=("Not Started", "In Progress", "Completed")),
    SchemaField("Priority", "Picklist", picklist_values=("High", "Normal", "Low")),
    SchemaField("ActivityDate", "Date"),
    SchemaField("Description", "Text", length=32000),
    SchemaField("Type", "Picklist", picklist_values=("Email", "Call", "Other", "SMS")),
)


# A Salesforce File's version, as the programme attaches the monthly report to a KPI record (VersionData is the
# file's content, base64; FirstPublishLocationId the record it is shared with).
CONTENT_VERSION_FIELDS: dict[str, SchemaField] = {
    field.name: field
    for field in (
        _ID,
        SchemaField("Title", "Text", length=255),
        SchemaField("PathOnClient", "Text", length=255),
        SchemaField("VersionData", "Text", length=50_000_000),
        SchemaField("FirstPublishLocationId", "Reference", length=18),
        SchemaField("ContentDocumentId", "Reference", length=18, updateable=False),
    )
}


def contact_fields(root: Path = DEFAULT_ROOT) -> dict[str, SchemaField]:
    """Every Contact field a deployed org has that the plugin may touch: the custom fields in the
    metadata under `root` (infra/salesforce) plus the standard fields, keyed by API name."""
    return _with_custom_fields(_STANDARD_CONTACT_FIELDS, root, "Contact")


def task_fields(root: Path = DEFAULT_ROOT) -> dict[str, SchemaField]:
    """Every Task field the programme may touch when it records a sent offer: the standard fields plus
    the Activity custom fields in the metadata under `root` (infra/salesforce), keyed by API name."""
    return _with_custom_fields(_STANDARD_TASK_FIELDS, root, "Activity")


def custom_objects(root: Path = DEFAULT_ROOT) -> dict[str, dict[str, SchemaField]]:
    """Every custom object in the metadata under `root` with its fields: Id, Name (an auto number) and its custom
    fields, keyed by API name."""
    objects = {}
    for package in package_dirs(root):
        for meta in sorted(package.glob("**/objects/*__c/*.object-meta.xml")):
            name = meta.parent.name
            if meta.name != f"{name}.object-meta.xml":
                raise SalesforceMetadataError(f"{meta}: an object's file must be named {name}.object-meta.xml")
            standard = (_ID, SchemaField("Name", "Text", length=80, updateable=False))
            objects[name] = _with_custom_fields(standard, root, name)
    return objects


def _with_custom_fields(standard: tuple[SchemaField, ...], root: Path, folder: str) -> dict[str, SchemaField]:
    fields = {field.name: field for field in standard}
    for path in field_files(root, folder):
        field = read_field(path)
        if not field.name.endswith("__c"):
            raise SalesforceMetadataError(f"{path}: custom field {field.name!r} must end with __c")
        if field.name in fields:
            raise SalesforceMetadataError(f"{path}: field {field.name!r} is defined twice")
        fields[field.name] = field
    return fields


def package_dirs(root: Path = DEFAULT_ROOT) -> list[Path]:
    """The package directories named in `root`/sfdx-project.json."""
    project_file = root / "sfdx-project.json"
    try:
        project = json.loads(project_file.read_text(encoding="utf-8"))
        return [root / entry["path"] for entry in project["packageDirectories"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SalesforceMetadataError(f"{project_file}: cannot read packageDirectories: {error}") from error


def field_files(root: Path, sobject: str) -> list[Path]:
    """The `.field-meta.xml` files of `sobject` (the metadata folder: Activity for Task and Event) in every
    package directory, sorted."""
    return sorted(
        path for package in package_dirs(root) for path in package.glob(f"**/objects/{sobject}/fields/*{FIELD_SUFFIX}")
    )


def read_field(path: Path) -> SchemaField:
    """One CustomField file as a SchemaField. The file must be well-formed Metadata API XML whose
    fullName matches its file name and whose type is one the programme uses."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise SalesforceMetadataError(f"{path}: not well-formed XML: {error}") from error
    if root.tag != _q("CustomField"):
        raise SalesforceMetadataError(f"{path}: root element is {root.tag}, expected {_q('CustomField')}")
    expected_name = path.name.removesuffix(FIELD_SUFFIX)
    name = _text(root, "fullName")
    if name is None or name != expected_name:
        raise SalesforceMetadataError(f"{path}: fullName {name!r} does not match the file name {expected_name!r}")
    field_type = _text(root, "type")
    if field_type is None or field_type not in CUSTOM_TYPES:
        raise SalesforceMetadataError(f"{path}: type {field_type!r} is not one of {sorted(CUSTOM_TYPES)}")
    length: int | None = None
    if field_type == "Lookup":
        if _text(root, "referenceTo") is None or _text(root, "relationshipName") is None:
            raise SalesforceMetadataError(f"{path}: a Lookup needs referenceTo and relationshipName")
        field_type, length = "Reference", 18
    if field_type == "Text":
        raw_length = _text(root, "length") or ""
        if not raw_length.isdigit() or not 1 <= int(raw_length) <= 255:
            raise SalesforceMetadataError(f"{path}: a Text field needs a length from 1 to 255, not {raw_length!r}")
        length = int(raw_length)
    picklist_values = _picklist_values(root) if field_type == "Picklist" else ()
    if field_type == "Picklist" and not picklist_values:
        raise SalesforceMetadataError(f"{path}: a Picklist field needs at least one value")
    return SchemaField(
        name=name,
        type=field_type,
        length=length,
        picklist_values=picklist_values,
        external_id=_text(root, "externalId") == "true",
        unique=_text(root, "unique") == "true",
        updateable=True,
    )


def _q(tag: str) -> str:
    return f"{{{METADATA_NS}}}{tag}"


def _text(element: ET.Element, tag: str) -> str | None:
    child = element.find(_q(tag))
    return child.text.strip() if child is not None and child.text is not None else None


def _picklist_values(root: ET.Element) -> tuple[str, ...]:
    values = root.findall(f"{_q('valueSet')}/{_q('valueSetDefinition')}/{_q('value')}")
    return tuple(name for value in values if (name := _text(value, "fullName")) is not None)
