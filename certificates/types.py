"""Licence types: their specification (JSON), versioning, validity rules and field validation.

A type is specified by a JSON document::

    {"code": "BL", "name_zh": "营业执照", "name_en": "Business licence",
     "fields_schema": {... JSON Schema (draft 2020-12) for the licence's fields ...},
     "validity": {"kind": "years", "years": 5},      # or {"kind": "days", "days": 90},
                                                     # {"kind": "until_field", "field": "expires_on"},
                                                     # {"kind": "indefinite"}
     "layout": {"fields": [{"name": "company", "label_zh": "名称", "label_en": "Name"}]},
     "disclosure": {"holder_name": "masked", "holder_id": "hidden", "fields": ["company"]}}

Adding a type whose code the department already has creates the next *version*; licences keep
the version they were issued under. A department issues only its own types.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import jsonschema
from sqlmodel import Session, col, select

from audit import record_event
from certificates.identifiers import CODE_PATTERN
from certificates.models import LicenceType
from certificates.text import text_problem
from ecert.errors import Forbidden, InvalidInput, NotFound

__all__ = [
    "TypeSpec",
    "UnknownLicenceType",
    "ForeignLicenceType",
    "parse_type_spec",
    "add_type",
    "list_types",
    "get_type",
    "validate_fields",
    "validity_window",
    "set_type_active",
]

_VALIDITY_KINDS = {"years", "days", "until_field", "indefinite"}
_DISCLOSURE = {"full", "masked", "hidden"}


class UnknownLicenceType(NotFound):
    slug = "unknown-licence-type"
    title = "No such licence type"


class ForeignLicenceType(Forbidden):
    slug = "foreign-licence-type"
    title = "The licence type belongs to another department"


@dataclass(frozen=True)
class TypeSpec:
    code: str
    name_zh: str
    name_en: str
    fields_schema: dict[str, Any]
    validity: dict[str, Any]
    layout: dict[str, Any]
    disclosure: dict[str, Any]


def _bad(pointer: str, detail: str) -> dict[str, str]:
    return {"pointer": pointer, "detail": detail}


def _check_validity(rule: Any, properties: dict[str, Any]) -> list[dict[str, str]]:
    if not isinstance(rule, dict) or rule.get("kind") not in _VALIDITY_KINDS:
        return [_bad("#/validity/kind", f"must be one of {sorted(_VALIDITY_KINDS)}")]
    kind = rule["kind"]
    if kind in ("years", "days") and not (isinstance(rule.get(kind), int) and 0 < rule[kind] <= 100 * 366):
        return [_bad(f"#/validity/{kind}", "must be a positive integer")]
    if kind == "until_field" and rule.get("field") not in properties:
        return [_bad("#/validity/field", "must name a property of fields_schema (a date)")]
    return []


def _check_layout_and_disclosure(layout: Any, disclosure: Any, properties: dict[str, Any]) -> list[dict[str, str]]:
    errors = []
    rows = layout.get("fields") if isinstance(layout, dict) else None
    if not isinstance(rows, list):
        errors.append(_bad("#/layout/fields", "must be a list of {name, label_zh, label_en}"))
    else:
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or row.get("name") not in properties:
                errors.append(_bad(f"#/layout/fields/{i}/name", "must name a property of fields_schema"))
            elif not (isinstance(row.get("label_zh"), str) and isinstance(row.get("label_en"), str)):
                errors.append(_bad(f"#/layout/fields/{i}", "needs label_zh and label_en"))
            else:
                errors += [_bad(f"#/layout/fields/{i}/{key}", problem) for key in ("label_zh", "label_en")
                           if (problem := text_problem(row[key]))]
    if not isinstance(disclosure, dict):
        return errors + [_bad("#/disclosure", "must be an object")]
    for key in ("holder_name", "holder_id"):
        if disclosure.get(key, "masked") not in _DISCLOSURE:
            errors.append(_bad(f"#/disclosure/{key}", f"must be one of {sorted(_DISCLOSURE)}"))
    public = disclosure.get("fields", [])
    if not isinstance(public, list) or any(name not in properties for name in public):
        errors.append(_bad("#/disclosure/fields", "must list properties of fields_schema"))
    return errors


def parse_type_spec(data: Any) -> TypeSpec:
    """Validate a type specification document; raise InvalidInput listing every problem."""
    if not isinstance(data, dict):
        raise InvalidInput("a licence type must be a JSON object")
    errors: list[dict[str, str]] = []
    code: Any = data.get("code")  # JSON: checked below
    if not isinstance(code, str) or not CODE_PATTERN.match(code):
        errors.append(_bad("#/code", "must be 2-16 of A-Z and 0-9"))
    for key in ("name_zh", "name_en"):
        if not (isinstance(data.get(key), str) and 0 < len(data[key]) <= 200):
            errors.append(_bad(f"#/{key}", "must be a non-empty string of at most 200 characters"))
        elif problem := text_problem(data[key]):
            errors.append(_bad(f"#/{key}", problem))
    schema: Any = data.get("fields_schema")  # JSON: check_schema refuses anything but a schema
    properties: dict[str, Any] = {}
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise jsonschema.SchemaError('the schema must describe an object ("type": "object")')
        properties = schema.get("properties", {})
    except jsonschema.SchemaError as exc:
        errors.append(_bad("#/fields_schema", f"not a valid JSON Schema: {exc.message}"))
    errors += _check_validity(data.get("validity"), properties)
    layout, disclosure = data.get("layout", {}), data.get("disclosure", {})
    errors += _check_layout_and_disclosure(layout, disclosure, properties)
    if errors:
        raise InvalidInput(f"the licence type has {len(errors)} problem(s)", errors=errors)
    return TypeSpec(code, data["name_zh"], data["name_en"], schema, data["validity"], layout, disclosure)


def add_type(
    session: Session, *, department_code: str, spec: TypeSpec, actor: str, now: dt.datetime
) -> LicenceType:
    """Store ``spec`` as the next version of the department's type ``spec.code``."""
    latest = session.exec(
        select(LicenceType.version)
        .where(LicenceType.department_code == department_code, LicenceType.code == spec.code)
        .order_by(col(LicenceType.version).desc())
    ).first()
    row = LicenceType(
        code=spec.code,
        department_code=department_code,
        version=(latest or 0) + 1,
        name_zh=spec.name_zh,
        name_en=spec.name_en,
        fields_schema=spec.fields_schema,
        validity=spec.validity,
        layout=spec.layout,
        disclosure=spec.disclosure,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    record_event(
        session, action="certificates.type.add", actor=actor, target=f"type:{department_code}/{spec.code}",
        department=department_code, details={"version": row.version}, at=now,
    )
    return row


def set_type_active(
    session: Session, *, department_code: str, code: str, active: bool, actor: str, now: dt.datetime
) -> int:
    rows = session.exec(
        select(LicenceType).where(LicenceType.department_code == department_code, LicenceType.code == code)
    ).all()
    if not rows:
        raise UnknownLicenceType(f"department {department_code} has no licence type {code}")
    for row in rows:
        row.active = active
        session.add(row)
    record_event(
        session, action="certificates.type.enable" if active else "certificates.type.disable", actor=actor,
        target=f"type:{department_code}/{code}", department=department_code, at=now,
    )
    return len(rows)


def list_types(session: Session, *, department_code: str | None = None) -> list[LicenceType]:
    query = select(LicenceType).order_by(col(LicenceType.department_code), col(LicenceType.code), col(LicenceType.version))
    if department_code is not None:
        query = query.where(LicenceType.department_code == department_code)
    return list(session.exec(query).all())


def get_type(
    session: Session, *, department_code: str, code: str, version: int | None = None
) -> LicenceType:
    """The department's type (latest active version unless ``version`` is given).

    Raises :class:`UnknownLicenceType`, or :class:`ForeignLicenceType` when the code belongs
    only to other departments.
    """
    query = select(LicenceType).where(LicenceType.department_code == department_code, LicenceType.code == code)
    if version is not None:
        query = query.where(LicenceType.version == version)
    else:
        query = query.where(LicenceType.active == True)  # noqa: E712
    row = session.exec(query.order_by(col(LicenceType.version).desc())).first()
    if row is not None:
        return row
    elsewhere = session.exec(
        select(LicenceType.department_code).where(LicenceType.code == code, LicenceType.department_code != department_code)
    ).first()
    if elsewhere is not None:
        raise ForeignLicenceType(f"licence type {code} belongs to another department; issue only your own types")
    suffix = f" version {version}" if version is not None else " (active)"
    raise UnknownLicenceType(f"department {department_code} has no licence type {code}{suffix}")


def validate_fields(licence_type: LicenceType, fields: Any) -> dict[str, Any]:
    """Check ``fields`` against the type's JSON Schema; InvalidInput with a pointer per bad field."""
    validator = jsonschema.Draft202012Validator(
        licence_type.fields_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = []
    for error in sorted(validator.iter_errors(fields), key=lambda e: list(e.absolute_path)):
        path = "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path)
        errors.append(_bad(f"#/fields/{path}" if path else "#/fields", error.message))
    if errors:
        raise InvalidInput(
            f"{len(errors)} field(s) do not match licence type {licence_type.code} v{licence_type.version}",
            errors=errors,
        )
    assert isinstance(fields, dict)
    return fields


def _add_years(start: dt.datetime, years: int) -> dt.datetime:
    if start.year + years > dt.MAXYEAR:
        raise OverflowError(f"year {start.year + years} is out of range")
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)


def validity_window(
    licence_type: LicenceType, fields: dict[str, Any], valid_from: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None]:
    """(valid_from, valid_until) under the type's validity rule; None means no end.

    An end beyond what a date can hold (year 9999) is InvalidInput, never an arithmetic error.
    """
    try:
        return _window(licence_type, fields, valid_from)
    except OverflowError as exc:
        name = licence_type.validity.get("field") if licence_type.validity.get("kind") == "until_field" else None
        detail = "the end of validity is out of range"
        raise InvalidInput(detail, errors=[_bad(f"#/fields/{name}" if name else "#/valid_from", detail)]) from exc


def _window(
    licence_type: LicenceType, fields: dict[str, Any], valid_from: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None]:
    rule = licence_type.validity
    kind = rule.get("kind")
    if kind == "years":
        return valid_from, _add_years(valid_from, int(rule["years"]))
    if kind == "days":
        return valid_from, valid_from + dt.timedelta(days=int(rule["days"]))
    if kind == "until_field":
        name = rule["field"]
        try:
            day = dt.date.fromisoformat(str(fields[name]))
        except (KeyError, ValueError) as exc:
            detail = "must be a date (YYYY-MM-DD): it sets the end of validity"
            raise InvalidInput(detail, errors=[_bad(f"#/fields/{name}", detail)]) from exc
        until = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
        if until <= valid_from:
            detail = "the end of validity is before the start"
            raise InvalidInput(detail, errors=[_bad(f"#/fields/{name}", detail)])
        return valid_from, until
    return valid_from, None
