"""The attendee page: "find my photos" with a selfie, served by the search API.

`/` and `/s/{session_id}` (a link that pre-fills the session) answer one small static page;
its CSS and JavaScript are under `/static/`. The page calls `POST /api/v2/search` from the
browser, like any client app; nothing here touches the face engine or the stores.
"""

from __future__ import annotations

from services.search_api.web.pages import WEB_ROUTES

__all__ = ["WEB_ROUTES"]
