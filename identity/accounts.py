"""Accounts of people and enterprises: registration, enterprise agents, TOTP enrolment, proofing.

Resident ID numbers, unified social credit codes and phone numbers are encrypted with Vault
transit and found by keyed blind index, both through :class:`certificates.holders.PiiVault`;
nothing here logs them or puts them in audit details (accounts are named by their ``acc_`` id).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from audit.trail import record_event
from certificates import records
from certificates.holders import HolderKind, PiiVault, mask, normalise_holder_id
from certificates.models import Licence
from ecert.clock import as_utc
from ecert.errors import Conflict, InvalidInput, NotFound
from identity import passwords
from identity.models import Account, EnterpriseAgent, RecoveryCode
from identity.once import claim

__all__ = [
    "ACR_PASSWORD",
    "ACR_TOTP",
    "ACR_IN_PERSON",
    "ACR_LEVELS",
    "AccountView",
    "AccountExists",
    "UnknownAccount",
    "WrongCode",
    "DocumentMismatch",
    "TotpEnrolment",
    "new_account",
    "view",
    "register_person",
    "register_enterprise",
    "add_agent",
    "agents_of",
    "get_account",
    "login_indexes",
    "normalise_phone",
    "begin_totp",
    "confirm_totp",
    "record_in_person_proofing",
    "reveal_id_number",
    "holder_kind",
    "licences_of",
    "own_licence",
]

ACR_PASSWORD = "pwd"
ACR_TOTP = "pwd+totp"
ACR_IN_PERSON = "in-person"
ACR_LEVELS = {ACR_PASSWORD: 1, ACR_TOTP: 2, ACR_IN_PERSON: 3}
ASSURANCE_SELF = "self"
_PHONE = re.compile(r"^1[3-9]\d{9}$")


class AccountExists(Conflict):
    """An account with this ID number already exists (log in, or recover it at a counter)."""

    slug = "account-exists"
    title = "An account with this ID number exists"


class UnknownAccount(NotFound):
    slug = "unknown-account"
    title = "No such account"


@dataclass(frozen=True)
class AccountView:
    """What an account holder (or staff serving them) sees: the ID number only masked."""

    id: str
    kind: str
    name: str
    id_masked: str
    phone_masked: str | None
    totp_enabled: bool
    assurance: str
    proofed_at: dt.datetime | None
    created_at: dt.datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "kind": self.kind, "name": self.name, "id_number": self.id_masked, "phone": self.phone_masked,
            "totp_enabled": self.totp_enabled, "assurance": self.assurance,
            "proofed_at": self.proofed_at.isoformat() if self.proofed_at else None, "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class TotpEnrolment:
    uri: str
    secret: str

    def __repr__(self) -> str:
        return "TotpEnrolment([redacted])"


def view(row: Account, *, id_number: str | None = None, phone: str | None = None) -> AccountView:
    return AccountView(
        id=row.id, kind=row.kind, name=row.name, id_masked=mask(id_number) if id_number else "*" * 18,
        phone_masked=mask(phone) if phone else None, totp_enabled=row.totp_cipher is not None, assurance=row.assurance,
        proofed_at=as_utc(row.proofed_at) if row.proofed_at else None, created_at=as_utc(row.created_at),
    )


def normalise_phone(value: str) -> str:
    text = re.sub(r"[\s-]+", "", value)
    text = text[3:] if text.startswith("+86") else text
    if not _PHONE.match(text):
        detail = "a mainland mobile number of 11 digits"
        raise InvalidInput(f"phone: {detail}", errors=[{"pointer": "#/phone", "detail": detail}])
    return text


def _phone_index(pii: PiiVault, phone: str) -> str:
    return pii.index(HolderKind.PERSON, ["phone:" + phone])[0]


def _check_name(name: str, what: str = "name") -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise InvalidInput(f"{what}: 1-200 characters", errors=[{"pointer": f"#/{what}", "detail": "1-200 characters"}])
    return name


def new_account(
    session: Session, pii: PiiVault, *, kind: HolderKind | str, name: str, id_number: str, phone: str | None,
    password: str, now: dt.datetime, username: str | None = None, legal_representative: str | None = None,
) -> Account:
    """The account row, ID number and phone protected through Vault (callers audit their own event)."""
    holder_kind = HolderKind.PERSON if kind == "staff" else HolderKind(kind)
    id_number = normalise_holder_id(holder_kind, id_number)
    passwords.check_password_policy(password)
    (id_cipher, id_index), = pii.protect(holder_kind, [id_number])
    kind_value = kind if isinstance(kind, str) else kind.value
    if session.exec(select(Account.id).where(Account.kind == kind_value, Account.id_index == id_index)).first():
        raise AccountExists("an account with this ID number exists")
    phone_cipher = phone_index = None
    if phone is not None:
        phone = normalise_phone(phone)
        phone_cipher, phone_index = pii.seal_many([phone])[0], _phone_index(pii, phone)
    row = Account(
        id="acc_" + secrets.token_hex(10), kind=kind_value, name=_check_name(name), username=username,
        id_cipher=id_cipher, id_index=id_index, phone_cipher=phone_cipher, phone_index=phone_index,
        legal_representative=legal_representative, password_hash=passwords.hash_password(password), created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def register_person(
    session: Session, pii: PiiVault, *, name: str, id_number: str, phone: str, password: str, now: dt.datetime
) -> AccountView:
    row = new_account(session, pii, kind=HolderKind.PERSON, name=name, id_number=id_number, phone=phone,
                       password=password, now=now)
    record_event(session, action="identity.account.register", actor=f"account:{row.id}", target=f"account:{row.id}",
                 details={"kind": row.kind}, at=now)
    return view(row, id_number=normalise_holder_id(HolderKind.PERSON, id_number), phone=normalise_phone(phone))


def register_enterprise(
    session: Session, pii: PiiVault, *, name: str, credit_code: str, legal_representative: str, phone: str,
    password: str, agents: Sequence[str] = (), now: dt.datetime,
) -> AccountView:
    """An enterprise account; ``agents`` are existing person account ids authorised to act for it."""
    row = new_account(session, pii, kind=HolderKind.ENTERPRISE, name=name, id_number=credit_code, phone=phone,
                       password=password, now=now, legal_representative=_check_name(legal_representative, "legal_representative"))
    record_event(session, action="identity.account.register", actor=f"account:{row.id}", target=f"account:{row.id}",
                 details={"kind": row.kind}, at=now)
    for person_id in agents:
        add_agent(session, enterprise_id=row.id, person_id=person_id, actor=f"account:{row.id}", now=now)
    return view(row, id_number=normalise_holder_id(HolderKind.ENTERPRISE, credit_code), phone=normalise_phone(phone))


def add_agent(session: Session, *, enterprise_id: str, person_id: str, actor: str, now: dt.datetime) -> None:
    enterprise, person = session.get(Account, enterprise_id), session.get(Account, person_id)
    if enterprise is None or enterprise.kind != HolderKind.ENTERPRISE.value:
        raise UnknownAccount(f"no enterprise account {enterprise_id}")
    if person is None or person.kind != HolderKind.PERSON.value:
        raise UnknownAccount(f"no person account {person_id}")
    if session.get(EnterpriseAgent, (enterprise_id, person_id)) is None:
        session.add(EnterpriseAgent(enterprise_id=enterprise_id, person_id=person_id, added_at=now, added_by=actor))
        session.flush()
        record_event(session, action="identity.account.agent-add", actor=actor, target=f"account:{enterprise_id}",
                     details={"agent": f"account:{person_id}"}, at=now)


def agents_of(session: Session, enterprise_id: str) -> list[str]:
    return list(session.exec(select(EnterpriseAgent.person_id).where(EnterpriseAgent.enterprise_id == enterprise_id)))


def get_account(session: Session, account_id: str, *, for_update: bool = False) -> Account:
    row = session.get(Account, account_id, with_for_update=for_update)
    if row is None:
        raise UnknownAccount(f"no account {account_id}")
    return row


def reveal_id_number(pii: PiiVault, row: Account) -> str:
    """The clear ID number (one Vault decrypt); for the holder's own pages only."""
    return pii.reveal(row.id_cipher)


def holder_kind(row: Account) -> str:
    """The kind of holder an account's licences name: staff members hold licences as people."""
    return HolderKind.PERSON.value if row.kind == "staff" else row.kind


def licences_of(session: Session, row: Account, *, limit: int = 100) -> list[Licence]:
    """The account's own licences, newest first, by the blind index the account row holds (no Vault call)."""
    return records.list_by_index(session, kind=holder_kind(row), index=row.id_index, limit=limit)


def own_licence(session: Session, row: Account, licence_id: str) -> Licence | None:
    """One of the account's own licences by id; None for anyone else's (or no such licence)."""
    licence = session.get(Licence, licence_id)
    if licence is None or licence.holder_kind != holder_kind(row) or licence.holder_index != row.id_index:
        return None
    return licence


def login_indexes(pii: PiiVault, login_name: str) -> list[tuple[str, str]]:
    """(column, blind index) for each reading of a login name: ID number, credit code or phone.

    A name that fits none still costs one Vault HMAC (its index is used only for throttling).
    """
    text = "".join(login_name.split()).upper()
    readings: list[tuple[HolderKind, str, str]] = []
    for kind in (HolderKind.PERSON, HolderKind.ENTERPRISE):
        try:
            readings.append((kind, "id_index", normalise_holder_id(kind, text)))
        except InvalidInput:
            pass
    try:
        readings.append((HolderKind.PERSON, "phone_index", "phone:" + normalise_phone(text)))
    except InvalidInput:
        pass
    if not readings:
        readings.append((HolderKind.PERSON, "none", "invalid:" + text[:64]))
    by_kind: dict[HolderKind, list[int]] = {}
    for i, (kind, _, _) in enumerate(readings):
        by_kind.setdefault(kind, []).append(i)
    indexes = [""] * len(readings)
    for kind, positions in by_kind.items():
        for pos, index in zip(positions, pii.index(kind, [readings[p][2] for p in positions])):
            indexes[pos] = index
    return [(column, indexes[i]) for i, (_, column, _) in enumerate(readings)]


def begin_totp(session: Session, pii: PiiVault, account_id: str, *, issuer: str) -> TotpEnrolment:
    """A new TOTP secret, kept (encrypted) as pending until a first code confirms it."""
    row = get_account(session, account_id, for_update=True)
    secret = passwords.new_totp_secret()
    row.totp_pending_cipher = pii.seal_many([secret])[0]
    session.add(row)
    session.flush()
    return TotpEnrolment(uri=passwords.totp_uri(secret, account_label=row.id, issuer=issuer), secret=secret)


class WrongCode(InvalidInput):
    """The one-time code does not match (or was already used)."""

    slug = "wrong-code"
    title = "The code is not right"


def confirm_totp(session: Session, pii: PiiVault, account_id: str, code: str, *, now: dt.datetime) -> list[str]:
    """Turn on TOTP when ``code`` matches the pending secret; returns fresh recovery codes (shown once)."""
    row = get_account(session, account_id)
    pending = row.totp_pending_cipher
    if pending is None:
        raise InvalidInput("start TOTP enrolment first")
    secret = pii.open_many([pending])[0]
    step = passwords.match_totp(secret, code, at=now, last_step=0)
    if step is None:
        raise WrongCode("the code does not match; check the phone's clock and try the next code")
    if not claim(session, Account, col(Account.id) == row.id, col(Account.totp_pending_cipher) == pending,
                 values={"totp_cipher": pending, "totp_pending_cipher": None, "totp_last_step": step}):
        raise WrongCode("this enrolment was already confirmed (or restarted): log in with the app's next code")
    for old in session.exec(select(RecoveryCode).where(RecoveryCode.account_id == row.id)):
        session.delete(old)
    codes = passwords.new_recovery_codes()
    for code_ in codes:
        session.add(RecoveryCode(code_hash=passwords.recovery_hash(row.id, code_), account_id=row.id, created_at=now))
    session.flush()
    record_event(session, action="identity.login.totp-enrol", actor=f"account:{row.id}", target=f"account:{row.id}",
                 details={"recovery_codes": len(codes)}, at=now)
    return codes


def record_in_person_proofing(
    session: Session, pii: PiiVault, account_id: str, *, document_number: str, document_type: str, staff: str,
    hall: str | None, now: dt.datetime,
) -> AccountView:
    """Staff checked the physical ID document: it must carry the account's ID number; raises assurance."""
    row = get_account(session, account_id, for_update=True)
    kind = HolderKind.PERSON if row.kind == "staff" else HolderKind(row.kind)
    presented = pii.index(kind, [normalise_holder_id(kind, document_number)])[0]
    if not secrets.compare_digest(presented, row.id_index):
        record_event(session, action="identity.counter.proofing-mismatch", actor=staff, target=f"account:{row.id}",
                     details={"document_type": document_type, "hall": hall}, at=now)
        raise DocumentMismatch("the document's number is not this account's ID number")
    row.assurance, row.proofed_at, row.proofed_by = ACR_IN_PERSON, now, staff
    session.add(row)
    session.flush()
    record_event(session, action="identity.counter.proofing", actor=staff, target=f"account:{row.id}",
                 details={"document_type": document_type, "hall": hall}, at=now)
    return view(row)


class DocumentMismatch(Conflict):
    """The ID document presented at the counter does not belong to this account."""

    slug = "document-mismatch"
    title = "The ID document does not match the account"
