"""POST /api/v2/search and the "notify me" subscriptions: public (search and subscribing
rate-limited per client IP). Thin: validate, run, answer."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter

from libs.common.events import is_valid_id
from libs.common.http.openapi import ProblemOperation, problem_responses
from libs.common.http.problems import ApiError
from libs.common.http.ratelimit import search_rate_limit
from libs.common.runtime import Runtime
from services.search_api.cache import SearchCache
from services.search_api.schemas import (
    MAX_LIMIT,
    MAX_SELFIES,
    SearchForm,
    SearchResponse,
    SubscribeForm,
    SubscriptionCreated,
    SubscriptionPhotos,
)
from services.search_api.search import SearchRequest, run_search
from services.search_api.subscriptions import (
    NO_SUCH_SUBSCRIPTION,
    SubscribeRequest,
    is_valid_token,
    subscribe,
    subscription_photos,
    unsubscribe,
)


def provide_cache(runtime: NamedDependency[Runtime]) -> SearchCache | None:
    search = runtime.settings.search
    if runtime.redis is None or search.cache_ttl_s <= 0:
        return None
    secret = search.cache_secret.get_secret_value().encode() if search.cache_secret else None
    return SearchCache(runtime.redis, search.cache_ttl_s, secret)


def _selfies_errors(session_id: str, selfies: list[bytes]) -> list[str]:
    """What is wrong with a form's session id and selfies (a search's or a subscription's)."""
    errors = []
    if not 1 <= len(selfies) <= MAX_SELFIES:
        errors.append(f"file: 1 to {MAX_SELFIES} selfies of one person")
    if not is_valid_id(session_id):
        errors.append("session_id: 1-128 characters of letters, digits and ._:-")
    return errors


def _validated(runtime: Runtime, form: SearchForm, selfies: list[bytes]) -> SearchRequest:
    search = runtime.settings.search
    errors = _selfies_errors(form.session_id, selfies)
    threshold = form.threshold if form.threshold is not None else runtime.face_engine().threshold
    if not search.min_threshold <= threshold <= 1.0:
        errors.append(f"threshold: between {search.min_threshold} and 1")
    limit = form.limit if form.limit is not None else search.default_limit
    if not 1 <= limit <= MAX_LIMIT:
        errors.append(f"limit: between 1 and {MAX_LIMIT}")
    if errors:
        raise ApiError(422, "validation-error", "; ".join(errors), extra={"errors": errors})
    return SearchRequest(form.session_id, tuple(selfies), threshold, limit)


class SearchController(Controller):
    path = "/api/v2"
    tags = ["search"]
    dependencies = {"cache": Provide(provide_cache, use_cache=True, sync_to_thread=False)}

    @post(
        "/search",
        status_code=200,
        guards=[search_rate_limit],
        responses=problem_responses(413, 415, 429, 503),
        operation_class=ProblemOperation,
        summary="Find a person's photos in a session with a selfie",
        description=(
            "The largest face of the selfie is searched among the session's indexed faces; "
            "each photo appears once, with its best-matching face, best first, with presigned "
            "links to its thumbnail, preview and (unless SEARCH_ORIGINALS=false) original. Up "
            "to 3 selfies of the same person (repeated `file` parts) are searched as one "
            "(SEARCH_SELFIES_FUSION) and count as one search. An unknown session answers like "
            "an empty one. 422 `no-face`: no face in a selfie (with several, `selfie` says "
            "which, from 1); 413/415: an image is too large or not an image; 429: rate-limited "
            "(Retry-After). No selfie is ever stored."
        ),
    )
    async def search(
        self,
        runtime: NamedDependency[Runtime],
        data: Annotated[SearchForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        cache: NamedDependency[SearchCache | None],
    ) -> SearchResponse:
        selfies = [await f.read() for f in data.file[: MAX_SELFIES + 1]]
        return await run_search(runtime, cache, _validated(runtime, data, selfies))


Token = Annotated[
    str,
    Parameter(
        pattern=r"^[A-Za-z0-9_-]+$",
        min_length=20,
        max_length=100,
        description="The token POST /api/v2/subscriptions answered",
    ),
]


def _checked_token(token: str) -> str:
    if not is_valid_token(token):
        raise ApiError(404, "unknown-subscription", NO_SUCH_SUBSCRIPTION)
    return token


class SubscriptionController(Controller):
    """Consented "notify me" subscriptions (docs/events.md, docs/security.md)."""

    path = "/api/v2/subscriptions"
    tags = ["subscriptions"]

    @post(
        "/",
        status_code=201,
        guards=[search_rate_limit],
        responses=problem_responses(404, 413, 415, 429, 503),
        operation_class=ProblemOperation,
        summary="Be told when new photos of a person arrive in a session",
        description=(
            "With `consent: true` and 1-3 selfies of one person: their fused face embedding "
            "(never the images) is kept until the subscription expires (SEARCH_SUBSCRIPTION_DAYS "
            "after now, or the session's own expiry if sooner), its token deletes it, or the "
            "session is erased. Each photo of the person indexed from now on is published as a "
            "`facepass.photos.matched.v1` event; the photos already there are listed by GET "
            ".../photos, never announced. Counts as a search for the rate limit. 422 "
            "`consent-required` without consent; 404 `unknown-session`: no photos yet."
        ),
    )
    async def subscribe(
        self,
        runtime: NamedDependency[Runtime],
        data: Annotated[SubscribeForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> SubscriptionCreated:
        selfies = [await f.read() for f in data.file[: MAX_SELFIES + 1]]
        errors = _selfies_errors(data.session_id, selfies)
        if data.consent is not True:
            errors.insert(0, "consent: must be true (the attendee's explicit agreement)")
        if errors:
            slug = "consent-required" if data.consent is not True else "validation-error"
            raise ApiError(422, slug, "; ".join(errors), extra={"errors": errors})
        return await subscribe(runtime, SubscribeRequest(data.session_id, tuple(selfies)))

    @get(
        "/{token:str}/photos",
        responses=problem_responses(404, 503),
        operation_class=ProblemOperation,
        summary="Every photo of the subscription's person so far",
        description=(
            "The photos matched so far, best first, with the links a search returns: those in "
            "the session when the subscription was made and every new one announced since. "
            "404 once the subscription is deleted, expired or erased."
        ),
    )
    async def photos(self, runtime: NamedDependency[Runtime], token: Token) -> SubscriptionPhotos:
        return await subscription_photos(runtime, _checked_token(token))

    @delete(
        "/{token:str}",
        status_code=204,
        responses=problem_responses(404, 503),
        operation_class=ProblemOperation,
        summary="Delete a subscription (its kept embedding and its matches) at once",
    )
    async def delete(self, runtime: NamedDependency[Runtime], token: Token) -> None:
        await unsubscribe(runtime, _checked_token(token))
