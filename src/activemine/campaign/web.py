"""The labeling page: a small FastAPI app over :class:`~activemine.campaign.leases.LabelingQueue`.

Imported only by ``activemine campaign serve`` (extra ``activemine[web]``).
Every route needs the campaign token (header ``X-Activemine-Token``, cookie
``activemine_token`` or query ``token``), checked by an outer ASGI layer
(:class:`RequestGuard`) **before any body is read**; then bodies are capped at
:data:`MAX_BODY_BYTES` (a label is a few hundred bytes), a request that
changes state must come from the page's own origin (``Origin``), and every
response carries a content security policy and ``X-Frame-Options: DENY``.
Images are rendered from the pool's pixel columns of the sample's row, or,
for a campaign of image files, read from the file its pool row names, which
must lie inside the pool folder (:mod:`activemine.campaign.imagefiles`): a
request names a sample id, never a path.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from activemine.campaign.batchdata import newest_rows
from activemine.campaign.exchange import view_columns
from activemine.campaign.leases import LabelingQueue
from activemine.campaign.pool import CampaignPool
from activemine.campaign.samples import pixels_to_png
from activemine.campaign.store import CampaignStore
from activemine.errors import InputError, LeaseError, StoreBusyError

__all__ = ["CLASS_KEYS", "MAX_BODY_BYTES", "RequestGuard", "create_app"]

#: The largest request body accepted; a label request is a few hundred bytes.
MAX_BODY_BYTES = 16 * 1024
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _security_headers(nonce: str | None = None) -> list[tuple[bytes, bytes]]:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    csp = (
        f"default-src 'none'; script-src {script}; style-src {script}; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
    ]


class RequestGuard:
    """ASGI layer in front of the app: token first, then origin and body size; security headers on every reply.

    Nothing of a request body is read before the token is checked, and never
    more than ``max_body`` bytes of it.
    """

    def __init__(self, app, *, token: str, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.token = token.encode()
        self.max_body = int(max_body)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not hmac.compare_digest(self._given_token(scope, headers).encode(), self.token):
            return await _reply(send, 401, "missing or wrong token; open the URL printed by `campaign serve`")
        if scope["method"] not in _SAFE_METHODS and not _same_origin(headers):
            return await _reply(send, 403, "requests that change labels must come from the labeling page itself")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _reply(send, 413, f"request body larger than {self.max_body} bytes")
        body = b""
        if scope["method"] not in _SAFE_METHODS:
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.max_body:
                    return await _reply(send, 413, f"request body larger than {self.max_body} bytes")
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [h for h in _security_headers() if h[0] not in names]
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            await send(message)

        await self.app(scope, replay, with_headers)

    @staticmethod
    def _given_token(scope, headers: dict) -> str:
        if headers.get("x-activemine-token"):
            return headers["x-activemine-token"]
        if "cookie" in headers:
            try:
                jar = SimpleCookie(headers["cookie"])
            except CookieError:
                jar = {}
            if COOKIE in jar:
                return jar[COOKIE].value
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        return values[0] if values else ""


def _same_origin(headers: dict) -> bool:
    """Whether a state-changing request comes from the page's own origin.

    Browsers send ``Origin`` on every POST made by a page; a request without
    one (a script with the token) is allowed, one from another site is not.
    """
    if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == headers.get("host", "").lower()


async def _reply(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *_security_headers(),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# digits first, then letters; s (skip) and u (undo) are taken
CLASS_KEYS = "1234567890abcdefghijklmnopqrtvwxy"
COOKIE = "activemine_token"


class AnnotatorBody(BaseModel):
    annotator: str


class SampleBody(AnnotatorBody):
    id: str


class LabelBody(SampleBody):
    label: str


def create_app(
    store: CampaignStore,
    *,
    token: str,
    round_no: int | None = None,
    lease_seconds: float = 300.0,
    max_body: int = MAX_BODY_BYTES,
    busy_timeout: float | None = None,
) -> RequestGuard:
    """The labeling app for ``store`` behind its :class:`RequestGuard`; ``token`` is required on every request.

    Raises :class:`~activemine.errors.CampaignError` when ``round_no`` is not a round of the campaign.
    A click that waits more than ``busy_timeout`` seconds (default
    :data:`~activemine.campaign.leases.PAGE_BUSY_TIMEOUT_S`) for another process's write is answered
    503 with a JSON ``detail`` the page shows, and ``Retry-After``; every error is answered in JSON.
    """
    if len(token) < 8:
        raise InputError(f"the token must have at least 8 characters, got {len(token)}")
    queue = LabelingQueue(
        store,
        round_no=round_no,
        lease_seconds=lease_seconds,
        **({} if busy_timeout is None else {"busy_timeout": busy_timeout}),
    )
    pool = CampaignPool(store)
    view = store.meta["view"]

    def pool_row(sid: str) -> dict | None:
        with store.snapshot() as conn:
            found = newest_rows(conn, [sid], "row")
        if sid not in found:
            return None
        return pool.rows_at([int(found[sid])], view_columns(view)).to_pylist()[0]

    classes = store.class_names
    if len(classes) > len(CLASS_KEYS):
        raise InputError(f"the page has keys for {len(CLASS_KEYS)} classes, the campaign has {len(classes)}")

    def require_token(request: Request) -> None:
        given = (
            request.headers.get("x-activemine-token")
            or request.cookies.get(COOKIE)
            or request.query_params.get("token")
            or ""
        )
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                status_code=401, detail="missing or wrong token; open the URL printed by `campaign serve`"
            )

    app = FastAPI(
        title="activemine labeling",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(require_token)],
    )

    @app.exception_handler(LeaseError)
    def _conflict(request, exc: LeaseError):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(InputError)
    def _bad_input(request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(StoreBusyError)
    def _busy(request, exc: StoreBusyError):
        detail = "The campaign is busy with another task (saving a round or an import); nothing was lost. Try again in a few seconds."
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    def _unexpected(request, exc: Exception):
        detail = f"The server failed on this request ({type(exc).__name__}); nothing was saved. Try again."
        return JSONResponse({"detail": detail}, status_code=500)

    def sample(sid: str | None) -> dict | None:
        if sid is None:
            return None
        out = {"id": sid, "kind": view["kind"]}
        if view["kind"] in ("image", "image_file"):
            out["image_url"] = "/api/image?" + urlencode({"id": sid})
        else:
            row = pool_row(sid) or {}
            if view["kind"] == "text":
                out["text"] = str(row[view["column"]])
            else:
                out["fields"] = [[c, str(row[c])] for c in view["columns"]]
        return out

    def state(sid: str | None) -> dict:
        return {"sample": sample(sid), "remaining": queue.remaining(), "round": queue.current_round()}

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request):
        config = {"classes": classes, "keys": list(CLASS_KEYS[: len(classes)])}
        nonce = secrets.token_urlsafe(16)
        html = _PAGE.replace("__CONFIG__", json.dumps(config).replace("<", "\\u003c")).replace("__NONCE__", nonce)
        headers = {k.decode(): v.decode() for k, v in _security_headers(nonce)}
        response = HTMLResponse(html, headers=headers)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.post("/api/next")
    def next_sample(body: AnnotatorBody):
        return state(queue.next(body.annotator))

    @app.post("/api/label")
    def label(body: LabelBody):
        queue.submit(body.annotator, body.id, body.label)
        return state(queue.next(body.annotator))

    @app.post("/api/skip")
    def skip(body: SampleBody):
        queue.skip(body.annotator, body.id)
        return state(queue.next(body.annotator))

    @app.post("/api/undo")
    def undo(body: AnnotatorBody):
        sid = queue.undo(body.annotator)
        return state(sid if sid is not None else queue.next(body.annotator))

    @app.get("/api/image")
    def image(id: str):
        try:
            sid = store.normalize_id(id)
        except InputError:
            sid = None
        row = pool_row(sid) if view["kind"] in ("image", "image_file") and sid is not None else None
        if row is None:
            raise HTTPException(status_code=404, detail="no such image")
        if view["kind"] == "image_file":
            from activemine.campaign.imagefiles import pool_image

            try:
                body, media = pool_image(row[view["column"]], store.meta["image"]["root"])
            except InputError:  # outside the pool folder, missing or unreadable: nothing to show
                raise HTTPException(status_code=404, detail="no such image") from None
            return Response(body, media_type=media, headers={"Cache-Control": "no-store"})
        png = pixels_to_png([row[c] for c in view["columns"]], view["shape"])
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return RequestGuard(app, token=token, max_body=max_body)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>activemine labeling</title>
<style nonce="__NONCE__">
 body { font-family: sans-serif; margin: 2em; }
 #sample-image { width: 280px; height: 280px; object-fit: contain; image-rendering: pixelated; border: 1px solid #888; }
 #sample-text { white-space: pre-wrap; max-width: 50em; font-size: 1.2em; }
 button { margin: .2em; padding: .4em .8em; font-size: 1em; }
 kbd { border: 1px solid #999; border-radius: 3px; padding: 0 .3em; }
 #message { color: #a00; min-height: 1.2em; }
</style></head>
<body>
<h1>activemine labeling</h1>
<div id="login"><label>Your name <input id="annotator" autocomplete="name"></label> <button id="start">Start</button></div>
<div id="work" hidden>
 <p id="progress"></p>
 <div id="sample"><img id="sample-image" alt="sample" hidden><div id="sample-text" hidden></div>
  <table id="sample-fields" hidden></table></div>
 <p id="done" hidden>Nothing left to label in this round. Thank you!</p>
 <div id="classes"></div>
 <button id="skip"><kbd>s</kbd> skip</button> <button id="undo"><kbd>u</kbd> undo</button>
</div>
<p id="message"></p>
<script nonce="__NONCE__">
const CONFIG = __CONFIG__;
const token = new URLSearchParams(location.search).get("token") || "";
let annotator = localStorage.getItem("activemine-annotator") || "";
let current = null;
const $ = (id) => document.getElementById(id);

async function call(path, body) {
  let r, data = null;
  try {
    r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
      "X-Activemine-Token": token}, body: JSON.stringify(Object.assign({annotator}, body || {}))});
  } catch (e) { $("message").textContent = "The labeling server cannot be reached. Try again."; return null; }
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) { $("message").textContent = (data && data.detail) || ("Error " + r.status + ". Try again."); return null; }
  $("message").textContent = "";
  show(data);
  return data;
}

function show(data) {
  current = data.sample;
  $("progress").textContent = "Round " + data.round + ": " + data.remaining + " left";
  for (const id of ["sample-image", "sample-text", "sample-fields"]) $(id).hidden = true;
  $("done").hidden = current !== null;
  if (!current) return;
  if (current.image_url) { $("sample-image").src = current.image_url; $("sample-image").hidden = false; }
  else if (current.kind === "text") { $("sample-text").textContent = current.text; $("sample-text").hidden = false; }
  else {
    const t = $("sample-fields"); t.replaceChildren();
    for (const [k, v] of current.fields) { const tr = t.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v; }
    t.hidden = false;
  }
  $("sample").dataset.id = current.id;
}

function label(cls) { if (current) call("/api/label", {id: current.id, label: cls}); }

CONFIG.classes.forEach((cls, i) => {
  const b = document.createElement("button");
  b.className = "class-btn"; b.dataset.label = cls;
  const k = document.createElement("kbd"); k.textContent = CONFIG.keys[i];
  b.append(k, " " + cls); b.onclick = () => label(cls);
  $("classes").append(b);
});
$("skip").onclick = () => current && call("/api/skip", {id: current.id});
$("undo").onclick = () => call("/api/undo");
$("start").onclick = () => {
  annotator = $("annotator").value.trim();
  if (!annotator) { $("message").textContent = "Enter your name first."; return; }
  localStorage.setItem("activemine-annotator", annotator);
  $("login").hidden = true; $("work").hidden = false; call("/api/next");
};
document.addEventListener("keydown", (e) => {
  if ($("work").hidden || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
  const i = CONFIG.keys.indexOf(e.key);
  if (i >= 0) label(CONFIG.classes[i]);
  else if (e.key === "s") $("skip").click();
  else if (e.key === "u") $("undo").click();
});
$("annotator").value = annotator;
</script></body></html>
"""
