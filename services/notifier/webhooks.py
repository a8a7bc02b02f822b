"""Which webhook a session's matched events go to: NOTIFY_WEBHOOKS names one per API key id;
a session belongs to the key that first uploaded into it (migration 0006). The owner of a
session never changes once known, so it is remembered."""

from __future__ import annotations

from libs.common.db import subscriptions as subscriptions_db
from libs.common.http.auth import key_id
from libs.common.runtime import Runtime
from services.notifier.delivery import Webhook

_MAX_OWNERS = 100_000


class Webhooks:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        keys = {
            key_id(k.get_secret_value()): k.get_secret_value()
            for k in runtime.settings.app.api_keys
        }
        unknown = sorted(set(runtime.settings.notify.webhooks) - set(keys))
        if unknown:
            raise ValueError(f"NOTIFY_WEBHOOKS names key ids that are not in API_KEYS: {unknown}")
        self._hooks = {
            kid: Webhook(url, keys[kid], kid)
            for kid, url in runtime.settings.notify.webhooks.items()
        }
        self._owners: dict[str, str] = {}

    async def for_session(self, session_id: str) -> Webhook | None:
        owner = self._owners.get(session_id)
        if owner is None:
            owner = await subscriptions_db.session_owner(self._runtime.pool(), session_id)
            if owner is None:
                return None
            if len(self._owners) >= _MAX_OWNERS:
                self._owners.clear()
            self._owners[session_id] = owner
        return self._hooks.get(owner)
