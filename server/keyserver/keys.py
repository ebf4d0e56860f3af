"""The rules of the key service, below any transport.

KeyManager turns validated requests into one database transaction each:
generate, rotate, update, delete, block, describe, list and verify keys, and
authenticate the callers that ask.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hmac
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import bindparam, delete, false, func, or_, select

from keyserver import auth, durations, settings, store, tokens
from keyserver.auth import Principal
from keyserver.clock import Clock
from keyserver.db import Database
from keyserver.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from keyserver.models import IdempotencyRecord, KeyRow
from keyserver.reads import COLUMN_NAMES, KEY_COLUMNS, KeySnapshot, KeyView, snapshot
from keyserver.statements import Prepared, Tx

#: How long a replay of an idempotent call is kept.
IDEMPOTENCY_WINDOW = dt.timedelta(hours=24)

_SORTABLE = {
    "created_at": KeyRow.created_at,
    "updated_at": KeyRow.updated_at,
    "expires": KeyRow.expires,
    "spend": KeyRow.spend,
    "key_alias": KeyRow.key_alias,
    "max_budget": KeyRow.max_budget,
}
#: A token id: the hex HMAC-SHA256 of a secret.
_TOKEN_ID = re.compile(r"[0-9a-f]{64}")
_REPLAY = Prepared(
    select(
        IdempotencyRecord.request_hash,
        IdempotencyRecord.response,
        IdempotencyRecord.created_at,
    ).where(IdempotencyRecord.id == bindparam("record_id"))
)
#: Every attribute of a new key before the caller's settings are applied.
_NEW_KEY: dict[str, Any] = {
    **{name: None for name in COLUMN_NAMES},
    "models": [],
    "tags": [],
    "spend": 0.0,
    "model_max_budget": {},
    "model_rpm_limit": {},
    "model_tpm_limit": {},
    "allowed_cache_controls": [],
    "metadata_": {},
    "permissions": {},
    "guardrails": [],
    "blocked": False,
    "enforced_params": [],
    "rotation_count": 0,
}
#: The actor of changes the service makes by itself, such as budget resets.
_SYSTEM = Principal(key=None, actor_name="system")
_MASTER = Principal(key=None)


class VerifyReason(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    BLOCKED = "blocked"
    OVER_BUDGET = "over_budget"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The answer of Verify."""

    reason: VerifyReason
    key: KeyView | None = None
    in_grace_period: bool = False

    @property
    def valid(self) -> bool:
        return self.reason is VerifyReason.OK


@dataclasses.dataclass(frozen=True)
class Issued:
    """A key with the plaintext secret that was just issued for it."""

    key: KeyView
    plaintext: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class Idempotency:
    """What makes a call idempotent: the caller's key and its request."""

    record_id: str
    request_hash: str
    seal_key: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class ListPage:
    keys: list[KeyView]
    total_count: int
    page: int
    total_pages: int


def _attr(name: str) -> str:
    # `metadata` is reserved on declarative classes; the column keeps its name.
    return "metadata_" if name == "metadata" else name


def _key_ref(ref: str, hasher: tokens.Hasher, *, param: str = "key") -> str:
    """The token a reference names: the hash of a plaintext, or a token id."""
    if not ref:
        raise InvalidArgument(f"{param} is required", param=param)
    if ref.startswith(tokens.KEY_PREFIX):
        return hasher.token(ref)
    if _TOKEN_ID.fullmatch(ref):
        return ref
    raise InvalidArgument(
        f"{param} must be a key (sk-...) or a token id (64 hex digits)", param=param
    )


def _grace_period(value: str | None, now: dt.datetime) -> dt.datetime:
    if value is None:
        return now
    durations.validate(value, param="grace_period")
    return durations.add(now, value)


def _current_spend(key: KeyView, now: dt.datetime) -> float:
    """The spend that counts now: none once the budget window has ended."""
    if key.budget_reset_at is not None and key.budget_reset_at <= now:
        return 0.0
    return key.spend


class KeyManager:
    def __init__(
        self, db: Database, hasher: tokens.Hasher, master_key: str, clock: Clock
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._master_token = hasher.token(master_key)
        self._clock = clock

    # -- authentication -----------------------------------------------------

    def credential_token(self, credential: str) -> str:
        return self._hasher.token(credential)

    async def authenticate(self, credential: str | None) -> Principal:
        """Return the caller a presented key belongs to, or raise Unauthenticated."""
        if not credential:
            raise Unauthenticated(
                "missing credentials: send 'Authorization: Bearer <key>'"
            )
        token = self._hasher.token(credential)
        if hmac.compare_digest(token, self._master_token):
            return _MASTER
        verdict = await self._verdict(token)
        if verdict.reason is VerifyReason.NOT_FOUND:
            raise Unauthenticated("invalid key: no such key, or it was rotated")
        if verdict.reason is VerifyReason.EXPIRED:
            raise Unauthenticated("this key has expired")
        if verdict.reason is VerifyReason.BLOCKED:
            raise Unauthenticated("this key is blocked")
        assert verdict.key is not None
        return Principal(key=verdict.key, retired_secret=verdict.in_grace_period)

    # -- reads --------------------------------------------------------------

    async def _verdict(self, token: str) -> Verdict:
        now = self._clock.now()
        reads = self._db.reads
        in_grace = False
        key = await reads.key_by_token(token)
        if key is None:
            retired = await reads.retired(token)
            if retired is None or retired[1] <= now:
                return Verdict(VerifyReason.NOT_FOUND)
            key = await reads.key_by_id(retired[0])
            if key is None:
                return Verdict(VerifyReason.NOT_FOUND)
            in_grace = True
        if key.expires is not None and key.expires <= now:
            reason = VerifyReason.EXPIRED
        elif key.blocked:
            reason = VerifyReason.BLOCKED
        elif key.max_budget is not None and _current_spend(key, now) >= key.max_budget:
            reason = VerifyReason.OVER_BUDGET
        else:
            reason = VerifyReason.OK
        return Verdict(reason, key, in_grace)

    async def verify(self, principal: Principal, presented: str) -> Verdict:
        if not presented:
            raise InvalidArgument("key is required", param="key")
        verdict = await self._verdict(self._hasher.token(presented))
        if verdict.key is None:
            if not principal.is_admin and principal.managed_team is None:
                # A plain key may only verify itself, and it exists.
                raise PermissionDenied("this key may not verify that key")
            return verdict
        auth.check_target(principal, verdict.key, "verify")
        return verdict

    async def info(self, principal: Principal, ref: str) -> KeyView:
        if not ref:
            if principal.key is None:
                raise InvalidArgument(
                    "key is required: the master key is not a stored key",
                    param="key",
                )
            return principal.key
        token = _key_ref(ref, self._hasher)
        key = await self._db.reads.key_by_token(token)
        if key is None:
            raise self._missing(await self._db.reads.retired(token) is not None)
        auth.check_target(principal, key, "info")
        return key

    async def list_keys(
        self,
        principal: Principal,
        *,
        page: int = 0,
        size: int = 0,
        user_id: str = "",
        team_id: str = "",
        organization_id: str = "",
        key_hash: str = "",
        key_alias: str = "",
        include_team_keys: bool = False,
        sort_by: str = "",
        sort_order: str = "",
    ) -> ListPage:
        own_team = auth.require_manager(principal, "list keys")
        for param, value in (
            ("user_id", user_id),
            ("team_id", team_id),
            ("organization_id", organization_id),
            ("key_hash", key_hash),
            ("key_alias", key_alias),
        ):
            settings.text(value, param=param)
        if page < 0:
            raise InvalidArgument("page must be 1 or more", param="page")
        if not 0 <= size <= 100:
            raise InvalidArgument("size must be from 1 to 100", param="size")
        page, size = page or 1, size or 10
        column = _SORTABLE.get(sort_by or "created_at")
        if column is None:
            raise InvalidArgument(
                f"sort_by must be one of {', '.join(sorted(_SORTABLE))}",
                param="sort_by",
            )
        if sort_order not in ("", "asc", "desc"):
            raise InvalidArgument("sort_order must be asc or desc", param="sort_order")
        if own_team is not None and team_id and team_id != own_team:
            raise PermissionDenied(
                "a team manager may list only its own team's keys", param="team_id"
            )

        query = select(*KEY_COLUMNS)
        if own_team is not None:
            query = query.where(KeyRow.team_id == own_team)
        if user_id and include_team_keys and own_team is not None:
            query = query.where(
                or_(KeyRow.user_id == user_id, KeyRow.team_id == own_team)
            )
        elif user_id:
            query = query.where(KeyRow.user_id == user_id)
        if team_id:
            query = query.where(KeyRow.team_id == team_id)
        if organization_id:
            # Keys carry no organisation yet, so nothing matches.
            query = query.where(false())
        if key_hash:
            query = query.where(KeyRow.token == key_hash)
        if key_alias:
            query = query.where(KeyRow.key_alias == key_alias)

        order = column.asc() if sort_order == "asc" else column.desc()
        page_query = (
            query.order_by(order, KeyRow.id).offset((page - 1) * size).limit(size)
        )

        def read(tx: Tx) -> tuple[int, list[KeyView]]:
            total = tx.scalar(select(func.count()).select_from(query.subquery()))
            return total or 0, [snapshot(row) for row in tx.rows(page_query)]

        total, keys = await self._db.query(read)
        # As the legacy API counts them: no pages when nothing matches.
        return ListPage(keys, total, page, -(-total // size))

    # -- writes -------------------------------------------------------------

    async def generate(
        self,
        principal: Principal,
        sent: Mapping[str, Any],
        key: str | None = None,
        *,
        idempotency: Idempotency | None = None,
        render: Callable[[Issued], bytes] | None = None,
    ) -> Issued:
        """Create a key. With `idempotency`, `render` gives the response that a
        retry replays; it is sealed and stored in the same transaction."""
        own_team = auth.require_manager(principal, "generate keys")
        changes = settings.validate(sent)
        if own_team is not None:
            changes.setdefault("team_id", own_team)
        plaintext = (
            tokens.new_secret()
            if key is None
            else tokens.check_custom_key(key, param="key")
        )
        token = self._hasher.token(plaintext)
        now = self._clock.now()
        values = {
            **_NEW_KEY,
            "id": str(uuid.uuid4()),
            "token": token,
            "key_name": tokens.key_name(plaintext),
            "created_at": now,
            **_writes(changes, now),
        }
        settings.check_size(values, values)
        if own_team is not None:
            # A new key holds every setting, so every one is checked.
            held = {name: values[_attr(name)] for name in settings.ALL_FIELDS}
            auth.check_grant(principal, held, settings.ALL_FIELDS)
            auth.check_expiry(principal, "manager", values["expires"])

        def create(tx: Tx) -> Issued:
            if key is not None and self._in_use(tx, token):
                raise AlreadyExists(
                    "key is already in use; choose another", param="key"
                )
            store.insert_key(tx, values)
            changed = {"changed": sorted(changes)}
            self._audit(tx, values["id"], "generate", principal, now, changed)
            issued = Issued(KeySnapshot(**values), plaintext)
            self._remember(tx, idempotency, render, issued, now)
            return issued

        return await self._db.transaction(create)

    async def regenerate(
        self,
        principal: Principal,
        ref: str,
        sent: Mapping[str, Any],
        *,
        grace_period: str | None = None,
        new_key: str | None = None,
        idempotency: Idempotency | None = None,
        render: Callable[[Issued], bytes] | None = None,
    ) -> Issued:
        """Rotate the secret of `ref` and apply `sent`, in one transaction.

        With `idempotency`, `render` turns the result into the response that a
        retry replays; it is sealed and stored in the same transaction.
        """
        changes = settings.validate(sent)
        now = self._clock.now()
        valid_until = _grace_period(grace_period, now)
        plaintext = (
            tokens.new_secret()
            if new_key is None
            else tokens.check_custom_key(new_key, param="new_key")
        )
        new_token = self._hasher.token(plaintext)

        def rotate(tx: Tx) -> Issued:
            key = self._find(tx, ref, lock=True)
            role = auth.check_target(principal, key, "regenerate")
            auth.check_changes(principal, role, changes)
            # A drawn secret cannot collide (256 random bits); the unique index
            # would still refuse one that did.
            if new_key is not None and self._in_use(tx, new_token):
                raise AlreadyExists(
                    "new_key is already in use; choose another", param="new_key"
                )

            values = _writes(changes, now)
            if "duration" not in changes and key.duration and role != "self":
                # A fresh window of the stored length: regenerating an expired
                # key never hands back a dead one. A key rotating itself keeps
                # its expiry, or it could rotate itself forever.
                values["expires"] = durations.add(now, key.duration)
            auth.check_expiry(principal, role, values.get("expires", key.expires))
            values.update(
                token=new_token,
                key_name=tokens.key_name(plaintext),
                rotation_count=key.rotation_count + 1,
                last_rotated_at=now,
            )
            settings.check_size(vars(key), values)
            rotated = store.update_key(tx, key, values)
            # No secret of the key outlives the grace period of this rotation:
            # one revoked now ends earlier grace periods now too.
            store.end_grace_periods(tx, key.id, valid_until)
            store.retire_secret(tx, key.token, key.id, now, valid_until)
            details: dict[str, Any] = {"changed": sorted(changes)}
            if grace_period is not None:
                details["grace_period"] = grace_period
            self._audit(tx, key.id, "regenerate", principal, now, details)
            issued = Issued(rotated, plaintext)
            self._remember(tx, idempotency, render, issued, now)
            return issued

        return await self._db.transaction(rotate)

    async def update(
        self, principal: Principal, ref: str, sent: Mapping[str, Any]
    ) -> KeyView:
        changes = settings.validate(sent)
        now = self._clock.now()

        def change(tx: Tx) -> KeyView:
            key = self._find(tx, ref, lock=True)
            role = auth.check_target(principal, key, "update")
            auth.check_changes(principal, role, changes)
            values = _writes(changes, now)
            auth.check_expiry(principal, role, values.get("expires", key.expires))
            settings.check_size(vars(key), values)
            changed = {"changed": sorted(changes)}
            self._audit(tx, key.id, "update", principal, now, changed)
            return store.update_key(tx, key, values)

        return await self._db.transaction(change)

    async def set_blocked(
        self, principal: Principal, ref: str, blocked: bool
    ) -> KeyView:
        action = "block" if blocked else "unblock"
        now = self._clock.now()

        def change(tx: Tx) -> KeyView:
            key = self._find(tx, ref, lock=True)
            auth.check_target(principal, key, action)
            self._audit(tx, key.id, action, principal, now, {})
            return store.update_key(tx, key, {"blocked": blocked, "updated_at": now})

        return await self._db.transaction(change)

    async def delete(
        self, principal: Principal, refs: Sequence[str], aliases: Sequence[str]
    ) -> list[str]:
        """Delete every named key, or none of them; return their token ids."""
        if not refs and not aliases:
            raise InvalidArgument("name keys in keys or key_aliases", param="keys")
        for alias in aliases:
            settings.text(alias, param="key_aliases")
        now = self._clock.now()

        def remove(tx: Tx) -> list[str]:
            keys: dict[str, KeySnapshot] = {}
            for ref in refs:
                key = self._find(tx, ref, lock=True)
                keys[key.id] = key
            for alias in aliases:
                found = store.keys_by_alias(tx, alias)
                if not found:
                    raise NotFound(
                        f"no key has the alias {alias!r}", param="key_aliases"
                    )
                keys.update((key.id, key) for key in found)
            for key in keys.values():
                auth.check_target(principal, key, "delete")
            store.delete_keys(tx, list(keys))
            for key in keys.values():
                self._audit(tx, key.id, "delete", principal, now, {})
            return [key.token for key in keys.values()]

        return await self._db.transaction(remove)

    # -- idempotency --------------------------------------------------------

    def idempotency(
        self, credential_token: str, idempotency_key: str, method: str, request: bytes
    ) -> Idempotency:
        """Derive the record id, request hash and sealing key of a call.

        All three are keyed by the caller's credential and the idempotency key,
        so one caller can never replay another's response.
        """
        if not 1 <= len(idempotency_key) <= 255:
            raise InvalidArgument(
                "idempotency-key must be 1 to 255 characters", param="idempotency-key"
            )
        parts = (method, credential_token, idempotency_key)
        return Idempotency(
            record_id=self._hasher.derive("idempotency-id", *parts).hex(),
            request_hash=self._hasher.derive(
                "idempotency-request", *parts, request.hex()
            ).hex(),
            seal_key=self._hasher.derive("idempotency-seal", *parts),
        )

    async def replay(self, idempotency: Idempotency) -> bytes | None:
        """Return the stored response of an earlier identical call, if any."""
        record = await self._db.query(
            lambda tx: tx.first(_REPLAY, {"record_id": idempotency.record_id})
        )
        if record is None:
            return None
        request_hash, response, created_at = record
        if created_at <= self._clock.now() - IDEMPOTENCY_WINDOW:
            return None
        if not hmac.compare_digest(request_hash, idempotency.request_hash):
            raise Conflict(
                "this idempotency-key was already used with a different request",
                param="idempotency-key",
            )
        try:
            return tokens.unseal(idempotency.seal_key, response)
        except InvalidTag:
            return None

    async def check_replayable(self, key_id: str, token: str) -> None:
        """Refuse to hand out again the answer of a call whose key has changed.

        A replay needs no authentication (a key that rotated itself has only
        its revoked secret to retry with), so it is given only while it is
        still the truth: the key exists, is not blocked, and its current
        secret is the one the answer holds.
        """
        key = await self._db.reads.key_by_id(key_id)
        if key is None:
            raise NotFound(
                "the key of the first call with this idempotency-key was deleted",
                param="idempotency-key",
            )
        if key.blocked or not hmac.compare_digest(key.token, token):
            raise Conflict(
                "the key has been blocked or rotated since the first call with this "
                "idempotency-key; its answer is no longer given out",
                param="idempotency-key",
            )

    def is_master(self, credential_token: str) -> bool:
        return hmac.compare_digest(credential_token, self._master_token)

    async def forget_stale_replays(self) -> int:
        """Delete replays older than the idempotency window."""
        cutoff = self._clock.now() - IDEMPOTENCY_WINDOW
        stale = delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= cutoff)

        def forget(tx: Tx) -> int:
            return tx.execute(stale)

        return await self._db.transaction(forget)

    async def reset_due_budgets(self, batch: int = 500) -> int:
        """Zero the spend of keys whose budget window is over; start the next.

        Verify already treats a due key's spend as zero, so a late run of this
        never refuses a key wrongly; it only brings the stored value up to date.
        """
        now = self._clock.now()

        def reset(tx: Tx) -> int:
            due = store.due_for_reset(tx, now, batch)
            for key in due:
                next_reset = (
                    durations.add(now, key.budget_duration)
                    if key.budget_duration
                    else None
                )
                values = {
                    "spend": 0.0,
                    "budget_reset_at": next_reset,
                    "updated_at": now,
                }
                store.update_key(tx, key, values)
                self._audit(tx, key.id, "budget_reset", _SYSTEM, now, {})
            return len(due)

        return await self._db.transaction(reset)

    # -- helpers ------------------------------------------------------------

    def _find(self, tx: Tx, ref: str, *, lock: bool = False) -> KeySnapshot:
        token = _key_ref(ref, self._hasher)
        key = store.key_by_token(tx, token, lock=lock)
        if key is not None:
            return key
        raise self._missing(store.retired_owner(tx, token) is not None)

    def _in_use(self, tx: Tx, token: str) -> bool:
        """Whether a caller-chosen secret is taken: by a key, current or
        retired, or by the master key."""
        return hmac.compare_digest(token, self._master_token) or store.secret_in_use(
            tx, token
        )

    @staticmethod
    def _missing(rotated: bool) -> Conflict | NotFound:
        """The error for a key reference that matches no current secret."""
        if rotated:
            return Conflict(
                "that secret was rotated: use the key's current secret or token id",
                param="key",
            )
        return NotFound("no key has that secret or token id", param="key")

    def _remember(
        self,
        tx: Tx,
        idempotency: Idempotency | None,
        render: Callable[[Issued], bytes] | None,
        issued: Issued,
        now: dt.datetime,
    ) -> None:
        """Store the sealed response of an idempotent call for its retries."""
        if idempotency is None or render is None:
            return
        sealed = tokens.seal(idempotency.seal_key, render(issued))
        store.remember_response(
            tx,
            idempotency.record_id,
            idempotency.request_hash,
            sealed,
            now,
            stale_before=now - IDEMPOTENCY_WINDOW,
        )

    def _audit(
        self,
        tx: Tx,
        key_id: str,
        action: str,
        principal: Principal,
        now: dt.datetime,
        details: Mapping[str, Any],
    ) -> None:
        store.audit(tx, key_id, action, principal.actor, now, details)


def _writes(changes: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The KeyRow attributes to write for validated `changes`."""
    values: dict[str, Any] = {"updated_at": now}
    for name, value in changes.items():
        if name == "duration":
            never = value == durations.NEVER
            values["duration"] = None if never else value
            values["expires"] = None if never else durations.add(now, value)
        elif name == "budget_duration":
            values["budget_duration"] = value
            values["budget_reset_at"] = durations.add(now, value) if value else None
        else:
            values[_attr(name)] = value
    return values
