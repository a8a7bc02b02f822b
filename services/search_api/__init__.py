"""Search API: POST /api/v2/search, a selfie in, the session's photos of that person out; and
the consented "notify me" subscriptions (POST/GET/DELETE /api/v2/subscriptions).
Needs PostgreSQL, S3 (presigned URLs), Redis (cache, rate limits) and the face engine."""

from __future__ import annotations

from libs.common.runtime import Need
from libs.common.service import ServiceSpec
from services.search_api.controllers import SearchController, SubscriptionController
from services.search_api.matrices import run_session_matrices, start_session_matrices
from services.search_api.web import WEB_ROUTES

SERVICE = ServiceSpec(
    name="search-api",
    needs=frozenset({Need.DB, Need.S3, Need.REDIS, Need.ENGINE}),
    routes=(SearchController, SubscriptionController, *WEB_ROUTES),
    on_start=(start_session_matrices,),
    background=(run_session_matrices,),
)
