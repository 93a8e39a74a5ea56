"""infra/salesforce agrees with the code: Contact and Task fields, picklists, permission set, metadata well-formed.

loyalty.crm.fields is the one place the code names Contact and Task fields; these tests prove the SFDX metadata
deployed to the org has exactly those fields with those types, so a field renamed on one side only
fails here and not in a customer's org.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from infra.local.salesforce_schema import (
    DEFAULT_ROOT,
    METADATA_NS,
    SalesforceMetadataError,
    SchemaField,
    contact_fields,
    custom_objects,
    read_field,
    task_fields,
)
from loyalty.crm.fields import (
    JOURNAL,
    JOURNAL_FIELDS,
    JOURNAL_KEY,
    KPI,
    KPI_FIELDS,
    KPI_KEY,
    LOCALE,
    LOYALTY_FIELDS,
    MEMBER_ID,
    READ_FIELDS,
    SEGMENTS,
    STANDARD_FIELDS,
    TASK_FIELDS,
    TASK_SEND_ID,
    FieldType,
)
from loyalty.programme.rules import load_program

PACKAGE = DEFAULT_ROOT / "force-app" / "main" / "default"
CONTACT_FIELDS_DIR = PACKAGE / "objects" / "Contact" / "fields"
ACTIVITY_FIELDS_DIR = PACKAGE / "objects" / "Activity" / "fields"  # Task and Event custom fields live on Activity
PERMISSION_SET = PACKAGE / "permissionsets" / "Loyalty_Integration.permissionset-meta.xml"
SIGNER_TEST = PACKAGE / "classes" / "LoyaltyCalloutSignerTest.cls"
NS = {"md": METADATA_NS}

# How a real org types the standard fields that crm_fields calls Text.
COMPATIBLE_TYPES = {FieldType.TEXT: {"Text", "Email", "Phone"}}
TASK_COMPATIBLE_TYPES = {FieldType.TEXT: {"Text", "Reference"}}  # WhoId is a reference the code writes as text


def all_metadata_files() -> list[Path]:
    return sorted(DEFAULT_ROOT.rglob("*-meta.xml"))


def all_field_files() -> list[Path]:
    return sorted(DEFAULT_ROOT.rglob("*.field-meta.xml"))


def md_text(element: ET.Element, tag: str) -> str | None:
    child = element.find(f"md:{tag}", NS)
    return child.text if child is not None else None


@pytest.fixture(scope="module")
def schema() -> dict[str, SchemaField]:
    return contact_fields()


@pytest.fixture(scope="module")
def task_schema() -> dict[str, SchemaField]:
    return task_fields()


@pytest.fixture(scope="module")
def permission_set() -> ET.Element:
    return ET.parse(PERMISSION_SET).getroot()


def field_permissions(permission_set: ET.Element) -> dict[str, tuple[bool, bool]]:
    """field -> (readable, editable) as granted by the permission set."""
    return {
        md_text(grant, "field") or "": (md_text(grant, "readable") == "true", md_text(grant, "editable") == "true")
        for grant in permission_set.findall("md:fieldPermissions", NS)
    }


# --- Contact fields against crm_fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOYALTY_FIELDS))
def test_every_loyalty_field_exists_in_the_metadata_with_its_type(name: str, schema: dict[str, SchemaField]) -> None:
    # Given the field and its type as the code names them
    expected_type = LOYALTY_FIELDS[name]

    # When the schema is read from infra/salesforce
    field = schema.get(name)

    # Then the org would have that field with that type
    assert field is not None, f"{name} is in crm_fields.LOYALTY_FIELDS but has no {name}.field-meta.xml"
    assert field.type == expected_type.value


def test_member_id_is_a_unique_case_insensitive_external_id(schema: dict[str, SchemaField]) -> None:
    # Given the field members are linked by
    # When its metadata is read
    field = schema[MEMBER_ID]
    raw = ET.parse(CONTACT_FIELDS_DIR / f"{MEMBER_ID}.field-meta.xml").getroot()

    # Then Contacts can be upserted by it and two Contacts can never share one
    assert field.external_id
    assert field.unique
    assert md_text(raw, "caseSensitive") == "false"
    assert field.length == 40


@pytest.mark.parametrize(("name", "length"), [("Loyalty_Segment_Reason__c", 255), ("Loyalty_Next_Tier__c", 255)])
def test_text_fields_have_their_lengths(name: str, length: int, schema: dict[str, SchemaField]) -> None:
    # Given / When the schema is read / Then the text field holds what the programme writes
    assert schema[name].length == length


def test_tier_picklist_is_the_programme_tiers_display_names_in_order(schema: dict[str, SchemaField]) -> None:
    # Given the tiers of the programme rules, lowest first
    expected = [tier.display_name for tier in load_program().tiers]

    # When the picklist is read from the metadata
    values = list(schema["Loyalty_Tier__c"].picklist_values)

    # Then it offers exactly those names, in that order
    assert values == expected


def test_segment_picklist_is_the_segment_labels_in_order(schema: dict[str, SchemaField]) -> None:
    # Given the segments the code knows
    # When the picklist is read from the metadata
    values = list(schema["Loyalty_Segment__c"].picklist_values)

    # Then it offers exactly their labels, in that order
    assert values == list(SEGMENTS.values())


@pytest.mark.parametrize("name", ["Loyalty_Tier__c", "Loyalty_Segment__c"])
def test_picklists_are_restricted(name: str) -> None:
    # Given a picklist the programme writes
    # When its metadata is read
    raw = ET.parse(CONTACT_FIELDS_DIR / f"{name}.field-meta.xml").getroot()

    # Then the org refuses values outside the list, so a drifted value fails loudly instead of piling up
    assert raw.findtext("md:valueSet/md:restricted", namespaces=NS) == "true"


@pytest.mark.parametrize("name", sorted(STANDARD_FIELDS))
def test_every_standard_field_exists_in_the_schema(name: str, schema: dict[str, SchemaField]) -> None:
    # Given a standard Contact field the code reads
    expected = STANDARD_FIELDS[name]

    # When the schema is built
    field = schema.get(name)

    # Then the emulated org has it, with a type compatible with the code's
    assert field is not None, f"{name} is missing from the standard Contact fields"
    assert field.type in COMPATIBLE_TYPES.get(expected, {expected.value})


def test_no_contact_field_in_the_metadata_is_unknown_to_crm_fields(schema: dict[str, SchemaField]) -> None:
    # Given the custom fields the metadata defines
    custom = {name for name in schema if name.endswith("__c")}

    # When compared with the fields the code writes and the ones it only reads
    known = set(LOYALTY_FIELDS) | set(READ_FIELDS)

    # Then nothing is deployed that the code does not know about, and nothing is missing
    assert custom - known == set(), "fields in infra/salesforce but not in crm_fields"
    assert known - custom == set(), "fields in crm_fields without metadata"


def test_fields_only_read_are_not_also_written() -> None:
    # Given / When / Then a field is either the programme's to write or the CRM users', never both
    assert set(READ_FIELDS).isdisjoint(LOYALTY_FIELDS)


def test_locale_field_is_a_short_text(schema: dict[str, SchemaField]) -> None:
    # Given / When the schema is read / Then the locale (sv_SE, en_GB) fits and is not an identifier
    field = schema[LOCALE]
    assert (field.type, field.length, field.external_id) == ("Text", 10, False)


def test_system_fields_are_not_updateable(schema: dict[str, SchemaField]) -> None:
    # Given / When the schema is read / Then the emulator refuses writes to fields the org computes
    assert {name for name, field in schema.items() if not field.updateable} == {"Id", "CreatedDate", "LastModifiedDate"}


def test_task_fields_are_the_standard_ones_plus_the_activity_metadata() -> None:
    # Given / When
    fields = task_fields()

    # Then sent offers can be recorded on a Contact as a Task, keyed by the custom field from objects/Activity
    standard = {"Id", "WhoId", "Subject", "Status", "Priority", "ActivityDate", "Description", "Type"}
    assert set(fields) == standard | {
        path.name.removesuffix(".field-meta.xml") for path in ACTIVITY_FIELDS_DIR.iterdir()
    }
    assert fields["WhoId"].type == "Reference"
    assert fields["Status"].picklist_values == ("Not Started", "In Progress", "Completed")
    assert "SMS" in fields["Type"].picklist_values
    assert not fields["Id"].updateable


# --- Task fields against crm_fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TASK_FIELDS))
def test_every_task_field_the_code_writes_exists_with_a_compatible_type(
    name: str, task_schema: dict[str, SchemaField]
) -> None:
    # Given a Task field and its type as the code names them
    expected = TASK_FIELDS[name]

    # When the Task schema is read (standard fields plus objects/Activity metadata)
    field = task_schema.get(name)

    # Then the org would have that field, with a type compatible with the code's, and the programme may write it
    assert field is not None, f"{name} is in crm_fields.TASK_FIELDS but not in the Task schema"
    assert field.type in TASK_COMPATIBLE_TYPES.get(expected, {expected.value})
    assert field.updateable


def test_no_activity_field_in_the_metadata_is_unknown_to_crm_fields(task_schema: dict[str, SchemaField]) -> None:
    # Given / When the custom Task fields the metadata defines are compared with those the code writes
    custom = {name for name in task_schema if name.endswith("__c")}

    # Then they are the same: nothing deployed that the code does not know, nothing the code writes missing
    assert custom == {name for name in TASK_FIELDS if name.endswith("__c")}


def test_send_id_is_a_unique_external_id_that_fits_the_programme_ids(task_schema: dict[str, SchemaField]) -> None:
    # Given the field sent offers are upserted by
    # When its metadata is read
    field = task_schema[TASK_SEND_ID]
    raw = ET.parse(ACTIVITY_FIELDS_DIR / f"{TASK_SEND_ID}.field-meta.xml").getroot()

    # Then Tasks can be upserted by it (a retried push updates instead of creating a second Task) and no two
    # Tasks share one
    assert field.external_id
    assert field.unique
    assert md_text(raw, "caseSensitive") == "false"
    assert (field.type, field.length) == ("Text", 100)


# --- The permission set ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOYALTY_FIELDS))
def test_permission_set_grants_read_and_edit_on_every_loyalty_field(name: str, permission_set: ET.Element) -> None:
    # Given the integration user's permission set
    grants = field_permissions(permission_set)

    # When the grant for the field is looked up
    grant = grants.get(f"Contact.{name}")

    # Then the integration user can read and write it
    assert grant == (True, True), f"Contact.{name}: {grant}"


@pytest.mark.parametrize("sobject", ["Task", "Event"])
def test_permission_set_grants_read_and_edit_on_the_send_id_for_task_and_event(
    sobject: str, permission_set: ET.Element
) -> None:
    # Given the integration user's permission set
    # When the grant on the Activity custom field is looked up under each object that shares it
    grant = field_permissions(permission_set).get(f"{sobject}.{TASK_SEND_ID}")

    # Then it can write the field on Tasks, and Event carries the same grant: Task and Event share field-level
    # security, and a deploy that names one and not the other leaves the other's access disabled
    assert grant == (True, True), f"{sobject}.{TASK_SEND_ID}: {grant}"


@pytest.mark.parametrize("name", ["Email", "MobilePhone", "Birthdate", "HasOptedOutOfEmail"])
def test_permission_set_grants_read_and_edit_on_the_consent_and_contact_fields(
    name: str, permission_set: ET.Element
) -> None:
    # Given / When / Then the programme can read the contact's details and write consent back
    assert field_permissions(permission_set).get(f"Contact.{name}") == (True, True)


def test_permission_set_only_names_fields_that_exist_and_can_be_granted(
    permission_set: ET.Element, schema: dict[str, SchemaField], task_schema: dict[str, SchemaField]
) -> None:
    # Given every field the permission set grants, and the fields each object has (an Activity custom field is
    # granted as Task.<field> and Event.<field>; the programme uses no standard Event field)
    granted = set(field_permissions(permission_set))
    activity_custom = {name for name in task_schema if name.endswith("__c")}
    fields_by_object = {"Contact": set(schema), "Task": set(task_schema), "Event": activity_custom}
    fields_by_object |= {name: set(fields) for name, fields in custom_objects().items()}

    # When checked against the schema
    unknown = {
        field for field in granted if field.partition(".")[2] not in fields_by_object.get(field.partition(".")[0], ())
    }

    # Then each exists (a typo fails the deploy), and no required or name field is listed: the Metadata API
    # refuses field permissions on required fields (LastName), and names are readable with Contact read
    assert unknown == set()
    assert granted.isdisjoint({"Contact.LastName", "Contact.FirstName", "Contact.Name", "Contact.Id"})


def test_permission_set_grants_contact_access_api_and_tasks(permission_set: ET.Element) -> None:
    # Given the permission set
    # When its object and user permissions are read
    objects = {
        md_text(grant, "object"): {
            flag: md_text(grant, flag) == "true"
            for flag in ("allowCreate", "allowRead", "allowEdit", "allowDelete", "modifyAllRecords")
        }
        for grant in permission_set.findall("md:objectPermissions", NS)
    }
    users = {
        md_text(grant, "name")
        for grant in permission_set.findall("md:userPermissions", NS)
        if md_text(grant, "enabled") == "true"
    }

    # Then it reads, edits and creates Contacts (Contact access depends on Account read) but never deletes,
    # creates Tasks (Edit Tasks; activities have no object permissions), and may use the API
    assert objects["Contact"] == {
        "allowCreate": True,
        "allowRead": True,
        "allowEdit": True,
        "allowDelete": False,
        "modifyAllRecords": False,
    }
    assert objects["Account"]["allowRead"]
    assert not any(flags["modifyAllRecords"] for flags in objects.values())
    # And deletes nothing but journal records older than the journal's window
    assert [name for name, flags in objects.items() if flags["allowDelete"]] == [JOURNAL]
    assert {"ApiEnabled", "EditTask"} <= users
    assert md_text(permission_set, "label") == "Loyalty Integration"
    assert len(md_text(permission_set, "description") or "") <= 255


# --- Well-formed metadata ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", all_metadata_files(), ids=lambda p: p.name)
def test_every_metadata_file_is_well_formed_in_the_metadata_namespace(path: Path) -> None:
    # Given a metadata file
    # When it is parsed
    root = ET.parse(path).getroot()

    # Then it is Metadata API XML
    assert root.tag.startswith(f"{{{METADATA_NS}}}"), root.tag


@pytest.mark.parametrize("path", all_field_files(), ids=lambda p: p.name)
def test_every_field_file_names_itself_and_fits_the_org_limits(path: Path) -> None:
    # Given a field file
    root = ET.parse(path).getroot()

    # When its names and texts are read
    full_name = md_text(root, "fullName")
    label = md_text(root, "label") or ""

    # Then the fullName is the file name, and label, help text and description fit what Salesforce accepts
    assert full_name == path.name.removesuffix(".field-meta.xml")
    assert 0 < len(label) <= 40
    assert len(md_text(root, "inlineHelpText") or "") <= 510
    assert len(md_text(root, "description") or "") <= 1000


def test_the_metadata_has_field_files() -> None:
    # Given / When the metadata is listed / Then the parametrised tests above had something to check
    assert len(all_field_files()) >= len(LOYALTY_FIELDS)


@pytest.mark.parametrize(
    "path",
    sorted(CONTACT_FIELDS_DIR.glob("*.field-meta.xml")) + sorted(ACTIVITY_FIELDS_DIR.glob("*.field-meta.xml")),
    ids=lambda p: f"{p.parent.parent.name}.{p.name}",
)
def test_contact_and_activity_fields_have_help_text_and_are_not_required(path: Path) -> None:
    # Given a loyalty Contact or Task field
    root = ET.parse(path).getroot()

    # When / Then CRM users get help text and saving a Contact never needs a loyalty value
    assert md_text(root, "inlineHelpText")
    assert md_text(root, "required") in (None, "false")


def test_apex_api_version_matches_the_project() -> None:
    # Given the project's source API version
    project = json.loads((DEFAULT_ROOT / "sfdx-project.json").read_text())

    # When each Apex class's version is read
    versions = {
        md_text(ET.parse(path).getroot(), "apiVersion") for path in sorted(PACKAGE.glob("classes/*.cls-meta.xml"))
    }

    # Then they agree
    assert versions == {project["sourceApiVersion"]}


# --- The Apex signer agrees with the programme's HMAC ------------------------------------------------------------


def apex_constant(source: str, name: str) -> str:
    match = re.search(rf"static final (?:String|Long) {name} = '?(.*?)'?L?;", source)
    assert match, f"{name} not found in {SIGNER_TEST.name}"
    return match.group(1)


def test_apex_known_answer_is_the_hmac_the_programme_computes() -> None:
    # Given the secret, clock, body and expected header of the Apex known-answer test
    source = SIGNER_TEST.read_text(encoding="utf-8")
    secret, now, body = (apex_constant(source, name) for name in ("SECRET", "NOW", "BODY"))
    expected = apex_constant(source, "EXPECTED_SIGNATURE")

    # When the header is computed here as the programme verifies it: HMAC-SHA256 of "<t>.<raw body>" in UTF-8
    mac = hmac.new(secret.encode(), f"{now}.{body}".encode(), hashlib.sha256).hexdigest()

    # Then Apex and Python agree, so a signature from the org verifies in AWS
    assert expected == f"t={now},v1={mac}"


# --- The reader fails as a deploy would ----------------------------------------------------------------------------


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    shutil.copytree(DEFAULT_ROOT, tmp_path / "salesforce", ignore=shutil.ignore_patterns("*.md"))
    return tmp_path / "salesforce"


def write_field(project: Path, file_name: str, body: str) -> Path:
    path = project / "force-app/main/default/objects/Contact/fields" / file_name
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<CustomField xmlns="{METADATA_NS}">{body}</CustomField>\n'
    )
    return path


def test_a_copy_of_the_metadata_reads_the_same(
    project_copy: Path, schema: dict[str, SchemaField], task_schema: dict[str, SchemaField]
) -> None:
    # Given / When the copy is read / Then it is the real schema (the failure cases below start from it)
    assert contact_fields(project_copy) == schema
    assert task_fields(project_copy) == task_schema


def test_a_renamed_activity_field_is_renamed_in_the_task_schema(project_copy: Path) -> None:
    # Given the send id field renamed in the metadata only
    fields_dir = project_copy / "force-app/main/default/objects/Activity/fields"
    source = fields_dir / f"{TASK_SEND_ID}.field-meta.xml"
    text = source.read_text().replace(TASK_SEND_ID, "Loyalty_Send_Ref__c")
    source.unlink()
    (fields_dir / "Loyalty_Send_Ref__c.field-meta.xml").write_text(text)

    # When the Task schema is read
    fields = task_fields(project_copy)

    # Then the old name is gone, so the emulator refuses it as a real org would (INVALID_FIELD)
    assert TASK_SEND_ID not in fields
    assert fields["Loyalty_Send_Ref__c"].external_id


def test_a_new_field_file_is_a_new_field(project_copy: Path) -> None:
    # Given a field added to the metadata only
    write_field(
        project_copy, "Loyalty_Extra__c.field-meta.xml", "<fullName>Loyalty_Extra__c</fullName><type>Date</type>"
    )

    # When the schema is read
    fields = contact_fields(project_copy)

    # Then it shows up, so the unknown-field test above would catch it
    assert fields["Loyalty_Extra__c"].type == "Date"


@pytest.mark.parametrize(
    ("file_name", "body", "message"),
    [
        ("Loyalty_A__c.field-meta.xml", "<fullName>Loyalty_B__c</fullName><type>Date</type>", "does not match"),
        ("Loyalty_A__c.field-meta.xml", "<fullName>Loyalty_A__c</fullName><type>Currency</type>", "type"),
        ("Loyalty_A__c.field-meta.xml", "<fullName>Loyalty_A__c</fullName><type>Text</type>", "length"),
        ("Loyalty_A__c.field-meta.xml", "<fullName>Loyalty_A__c</fullName><type>Picklist</type>", "at least one"),
        ("Loyalty_A.field-meta.xml", "<fullName>Loyalty_A</fullName><type>Date</type>", "__c"),
        ("Loyalty_A__c.field-meta.xml", "<fullName>Loyalty_A__c</fullName><type>Date</type", "well-formed"),
    ],
)
def test_a_broken_field_file_is_refused_naming_the_file(
    project_copy: Path, file_name: str, body: str, message: str
) -> None:
    # Given a field file a deploy would refuse
    path = write_field(project_copy, file_name, body)

    # When the schema is read / Then the error names the file and the problem
    with pytest.raises(SalesforceMetadataError, match=message) as error:
        contact_fields(project_copy)
    assert str(path) in str(error.value)


def test_a_file_outside_the_metadata_namespace_is_refused(tmp_path: Path) -> None:
    # Given a CustomField without the Metadata API namespace
    path = tmp_path / "Loyalty_A__c.field-meta.xml"
    path.write_text("<CustomField><fullName>Loyalty_A__c</fullName><type>Date</type></CustomField>")

    # When / Then it is refused
    with pytest.raises(SalesforceMetadataError, match="root element"):
        read_field(path)


# --- The transaction journal and the monthly KPI records -----------------------------------------------------


@pytest.mark.parametrize(
    ("sobject", "fields", "key"), [(JOURNAL, JOURNAL_FIELDS, JOURNAL_KEY), (KPI, KPI_FIELDS, KPI_KEY)]
)
def test_each_custom_object_has_exactly_the_fields_the_code_writes_keyed_by_an_external_id(
    sobject: str, fields: dict[str, FieldType], key: str
) -> None:
    # Given the object as the metadata defines it
    schema = custom_objects()[sobject]
    # When compared with what loyalty.crm.fields writes
    custom = {name for name in schema if name.endswith("__c")}
    # Then they agree, each with a compatible type, and the key is an external id, unique: a repeat updates
    assert custom == set(fields)
    for name, expected in fields.items():
        assert schema[name].type in TASK_COMPATIBLE_TYPES.get(expected, {expected.value}), name
    assert schema[key].external_id and schema[key].unique
    assert not schema["Name"].updateable  # an auto number


def test_the_journal_hangs_on_the_contact_as_the_card_reads_it() -> None:
    raw = ET.parse(PACKAGE / "objects" / JOURNAL / "fields" / "Contact__c.field-meta.xml").getroot()
    assert (md_text(raw, "referenceTo"), md_text(raw, "relationshipName")) == ("Contact", "Loyalty_Transactions")
    card = (PACKAGE / "lwc" / "loyaltyCard" / "loyaltyCard.js").read_text()
    assert "relatedListId: 'Loyalty_Transactions__r'" in card
    kinds = {
        value.findtext("md:fullName", namespaces=NS)
        for value in ET.parse(PACKAGE / "objects" / JOURNAL / "fields" / "Kind__c.field-meta.xml")
        .getroot()
        .iter(f"{{{METADATA_NS}}}value")
    }
    from loyalty.ledger.model import EntryKind

    assert kinds == {kind.value for kind in EntryKind}  # every entry's kind fits the restricted picklist


@pytest.mark.parametrize(
    ("permission_set_name", "editable"), [("Loyalty_Integration", True), ("Loyalty_Viewer", False)]
)
def test_the_permission_sets_grant_the_journal_and_kpi_fields(permission_set_name: str, editable: bool) -> None:
    # Given the integration user's permission set (writes them) and the CRM users' (reads them)
    grants = field_permissions(
        ET.parse(PACKAGE / "permissionsets" / f"{permission_set_name}.permissionset-meta.xml").getroot()
    )
    # Then every field of both objects is granted, readable, and editable for the integration only
    for sobject, fields in ((JOURNAL, JOURNAL_FIELDS), (KPI, KPI_FIELDS)):
        for name in fields:
            assert grants.get(f"{sobject}.{name}") == (True, editable), f"{sobject}.{name}"


def test_report_types_name_fields_that_exist() -> None:
    objects = custom_objects()
    for path in sorted((PACKAGE / "reportTypes").glob("*.reportType-meta.xml")):
        root = ET.parse(path).getroot()
        for column in root.iter(f"{{{METADATA_NS}}}columns"):
            table, field = md_text(column, "table"), md_text(column, "field")
            sobject = JOURNAL if table.endswith("Loyalty_Transactions__r") else table
            known = set(objects[sobject]) if sobject in objects else set(contact_fields()) | {"Name"}
            assert field in known, f"{path.name}: {table}.{field}"
