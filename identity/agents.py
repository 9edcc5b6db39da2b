"""Enterprise agents: the people an enterprise account authorises to act for it.

An enterprise adds a person by the person's registered resident ID number (found by keyed blind
index, never decrypted or echoed back) or by their ``acc_`` account id, and removes them again;
removal takes effect on the agent's next request, since every act-for request reads the
agent row. An agent may read (list, download) the enterprise's e-licences and nothing else.
Every add, remove and act-for read is audited; details name accounts by id only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, col, select

from audit.trail import record_event
from certificates.holders import HolderKind, PiiVault, mask, normalise_holder_id
from certificates.models import Licence
from ecert.clock import as_utc
from ecert.errors import InvalidInput, NotFound
from identity.accounts import UnknownAccount, add_agent, get_account, licences_of, own_licence
from identity.models import Account, EnterpriseAgent

__all__ = [
    "AgentView",
    "NotAnAgent",
    "list_agents",
    "add_agent_by_reference",
    "remove_agent",
    "enterprises_for",
    "act_for",
    "enterprise_licences",
]


class NotAnAgent(NotFound):
    """The caller is not (or no longer) an agent of that enterprise; to them it does not exist."""

    slug = "not-an-agent"
    title = "No such enterprise you act for"


@dataclass(frozen=True)
class AgentView:
    """One agent as the enterprise sees them: name, masked ID number, account id, when and by whom added."""

    account_id: str
    name: str
    id_masked: str
    added_at: dt.datetime
    added_by: str


def _enterprise(session: Session, enterprise_id: str) -> Account:
    row = get_account(session, enterprise_id)
    if row.kind != HolderKind.ENTERPRISE.value:
        raise UnknownAccount(f"no enterprise account {enterprise_id}")
    return row


def list_agents(session: Session, pii: PiiVault, enterprise_id: str) -> list[AgentView]:
    """The enterprise's agents, oldest first (their ID numbers masked: one batched Vault decrypt)."""
    rows = session.exec(
        select(EnterpriseAgent, Account).join(Account, col(Account.id) == col(EnterpriseAgent.person_id))
        .where(EnterpriseAgent.enterprise_id == enterprise_id).order_by(col(EnterpriseAgent.added_at), col(Account.id))
    ).all()
    clear = pii.open_many([person.id_cipher for _, person in rows]) if rows else []
    return [AgentView(account_id=person.id, name=person.name, id_masked=mask(id_number), added_at=as_utc(agent.added_at),
                      added_by=agent.added_by) for (agent, person), id_number in zip(rows, clear)]


def _person_by_reference(session: Session, pii: PiiVault, reference: str) -> Account:
    """The person account named by an ``acc_`` id or a registered resident ID number (blind index)."""
    text = "".join(reference.split())
    if text.lower().startswith("acc_"):
        row = session.get(Account, text.lower())
    else:
        try:
            index = pii.index(HolderKind.PERSON, [normalise_holder_id(HolderKind.PERSON, text)])[0]
        except InvalidInput:
            raise InvalidInput("give the person's resident ID number or account id (acc_...)",
                               errors=[{"pointer": "#/person", "detail": "an ID number or acc_ account id"}]) from None
        row = session.exec(select(Account).where(Account.kind == HolderKind.PERSON.value, Account.id_index == index)).first()
    if row is None or row.kind != HolderKind.PERSON.value or row.disabled_at is not None:
        shown = mask(text) if not text.lower().startswith("acc_") else text[:32]
        raise UnknownAccount(f"no registered person {shown}")
    return row


def add_agent_by_reference(session: Session, pii: PiiVault, *, enterprise_id: str, reference: str, now: dt.datetime) -> Account:
    """The enterprise authorises the person named by ``reference``; returns that person's account (audited once)."""
    _enterprise(session, enterprise_id)
    person = _person_by_reference(session, pii, reference)
    add_agent(session, enterprise_id=enterprise_id, person_id=person.id, actor=f"account:{enterprise_id}", now=now)
    return person


def remove_agent(session: Session, *, enterprise_id: str, person_id: str, actor: str, now: dt.datetime) -> None:
    """The person may no longer act for the enterprise, from their next request on."""
    row = session.get(EnterpriseAgent, (enterprise_id, person_id), with_for_update=True)
    if row is None:
        raise NotAnAgent(f"{person_id} is not an agent of this enterprise")
    session.delete(row)
    session.flush()
    record_event(session, action="identity.account.agent-remove", actor=actor, target=f"account:{enterprise_id}",
                 details={"agent": f"account:{person_id}"}, at=now)


def enterprises_for(session: Session, person_id: str) -> list[Account]:
    """The enterprises the person acts for, by name."""
    query = (select(Account).join(EnterpriseAgent, col(EnterpriseAgent.enterprise_id) == col(Account.id))
             .where(EnterpriseAgent.person_id == person_id, col(Account.disabled_at).is_(None)).order_by(col(Account.name)))
    return list(session.exec(query))


def act_for(session: Session, *, person_id: str, enterprise_id: str) -> Account:
    """The enterprise, if the person is its agent right now (else NotAnAgent, same as no such enterprise)."""
    agent = session.get(EnterpriseAgent, (enterprise_id, person_id))
    enterprise = session.get(Account, enterprise_id) if agent is not None else None
    if enterprise is None or enterprise.disabled_at is not None:
        raise NotAnAgent("no such enterprise you act for")
    return enterprise


def enterprise_licences(
    session: Session, *, person_id: str, enterprise_id: str, now: dt.datetime, licence_id: str | None = None,
) -> tuple[Account, list[Licence]]:
    """An agent reads the enterprise's e-licences (all, or the one ``licence_id``); audited as an act-for read."""
    enterprise = act_for(session, person_id=person_id, enterprise_id=enterprise_id)
    if licence_id is None:
        licences = licences_of(session, enterprise, limit=100)
    else:
        licences = [found] if (found := own_licence(session, enterprise, licence_id)) is not None else []
    record_event(session, action="identity.account.agent-act", actor=f"account:{person_id}",
                 target=f"account:{enterprise_id}", details={"read": "licence" if licence_id else "licences",
                                                             "licence": licence_id}, at=now)
    return enterprise, licences
