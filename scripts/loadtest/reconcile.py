"""After the traffic: do balances, observed charges and the ledger agree; is work left?

Per user: ``opening balance - charges seen in responses`` must equal the balance
``GET /api/me`` reports. With database access (the local service, or ``--url`` with
``--database-url``) also: that balance equals ``users.balance`` and the sum of the
user's ``credit_ledger`` rows, no reservation is still ``reserved``, no job of the
run's users is ``queued`` or ``running``, and the database holds exactly the jobs the
client submitted since the start of the run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scripts.loadtest.client import Client
from scripts.loadtest.jobs import JobTracker
from scripts.loadtest.ledger import Account, Book


@dataclass
class UserCheck:
    """One user's figures; ``problems`` is empty when they all agree."""

    username: str
    role: str
    start: int
    charged: int
    expected: int
    api_balance: int | None
    paid_operations: int = 0
    unknown_outcomes: int = 0
    db_balance: int | None = None
    ledger_sum: int | None = None
    open_reservations: int | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class Reconciliation:
    users: list[UserCheck]
    db_checked: bool
    unfinished_jobs: list[str] = field(default_factory=list)
    db_unfinished_jobs: list[str] = field(default_factory=list)
    db_jobs: int | None = None
    client_jobs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def credits_ok(self) -> bool:
        return not any(u.problems for u in self.users)

    @property
    def jobs_ok(self) -> bool:
        return not (self.unfinished_jobs or self.db_unfinished_jobs or self.problems)

    @property
    def ok(self) -> bool:
        return self.credits_ok and self.jobs_ok

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "credits_ok": self.credits_ok, "jobs_ok": self.jobs_ok}


async def reconcile(
    client: Client,
    accounts: list[Account],
    book: Book,
    tracker: JobTracker,
    database_url: str | None,
    started_at: dt.datetime,
) -> Reconciliation:
    """Compare every account's figures; see the module docstring for the rules."""
    users = []
    for account in accounts:
        answer = await client.call("reconcile:me", "GET", "api/me", token=account.token)
        balance = answer.field("balance") if answer.ok else None
        name = account.username
        check = UserCheck(
            username=name,
            role=account.role,
            start=book.start[name],
            charged=book.charged[name],
            expected=book.expected(name),
            api_balance=balance if isinstance(balance, int) else None,
            paid_operations=book.paid_ops[name],
            unknown_outcomes=book.unknown[name],
        )
        if check.api_balance is None:
            check.problems.append(f"GET /api/me answered {answer.status}")
        elif check.api_balance != check.expected:
            check.problems.append(
                f"balance {check.api_balance} != opening {check.start} - charged "
                f"{check.charged} = {check.expected}"
                + (
                    f" ({check.unknown_outcomes} outcomes unknown)"
                    if check.unknown_outcomes
                    else ""
                )
            )
        users.append(check)
    result = Reconciliation(
        users=users,
        db_checked=database_url is not None,
        unfinished_jobs=[j.job_id for j in tracker.pending],
        client_jobs=len(tracker.jobs),
    )
    if database_url is not None:
        check_database(result, database_url, set(tracker.jobs), started_at)
    return result


def check_database(
    result: Reconciliation, database_url: str, job_ids: set[str], started_at: dt.datetime
) -> None:
    """Fill in the database side of ``result`` (balances, ledger, reservations, jobs)."""
    from sqlalchemy import func, select

    from serve_app.accounts.models import CreditLedgerRow, ReservationRow, UserRow
    from serve_app.jobs.store.tables import JobRow, JobStatus
    from serve_app.storage.db import Database

    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        if not path.is_file():
            result.problems.append(f"no database at {path}")
            return
    database = Database(database_url)
    unfinished = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    try:
        with database.transaction() as session:
            names = [u.username for u in result.users]
            found = session.execute(
                select(UserRow.username, UserRow.id).where(UserRow.username.in_(names))
            )
            ids = {name: user_id for name, user_id in found}
            for user in result.users:
                user_id = ids.get(user.username)
                if user_id is None:
                    user.problems.append("not in the database")
                    continue
                user.db_balance = session.scalar(
                    select(UserRow.balance).where(UserRow.id == user_id)
                )
                user.ledger_sum = int(
                    session.scalar(
                        select(func.coalesce(func.sum(CreditLedgerRow.delta), 0)).where(
                            CreditLedgerRow.user_id == user_id
                        )
                    )
                    or 0
                )
                user.open_reservations = int(
                    session.scalar(
                        select(func.count())
                        .select_from(ReservationRow)
                        .where(
                            ReservationRow.user_id == user_id, ReservationRow.state == "reserved"
                        )
                    )
                    or 0
                )
                _database_problems(user)
            rows = session.execute(
                select(JobRow.id, JobRow.status).where(
                    JobRow.user_id.in_(list(ids.values())), JobRow.created_at >= started_at
                )
            )
            jobs = {job_id: status for job_id, status in rows}
    finally:
        database.dispose()
    result.db_jobs = len(jobs)
    result.db_unfinished_jobs = sorted(i for i, s in jobs.items() if s in unfinished)
    unknown = set(jobs) - job_ids
    if unknown:
        result.problems.append(f"{len(unknown)} jobs in the database the client never saw")
    missing = job_ids - set(jobs)
    if missing:
        result.problems.append(f"{len(missing)} submitted jobs are not in the database")


def _database_problems(user: UserCheck) -> None:
    if user.db_balance != user.api_balance and user.api_balance is not None:
        user.problems.append(f"users.balance {user.db_balance} != API balance {user.api_balance}")
    if user.ledger_sum != user.db_balance:
        user.problems.append(f"ledger sum {user.ledger_sum} != users.balance {user.db_balance}")
    if user.db_balance != user.expected:
        user.problems.append(f"users.balance {user.db_balance} != expected {user.expected}")
    if user.open_reservations:
        user.problems.append(f"{user.open_reservations} reservations still reserved")
