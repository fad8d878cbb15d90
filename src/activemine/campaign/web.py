"""The labeling page: a small FastAPI app over :class:`~activemine.campaign.leases.LabelingQueue`.

Imported only by ``activemine campaign serve`` (extra ``activemine[web]``).
Every route needs the campaign token (header ``X-Activemine-Token``, cookie
``activemine_token`` or query ``token``). The app serves no files: images are
rendered from the pool's pixel columns in memory, so no path in a request can
reach the disk.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from activemine.campaign.leases import LabelingQueue
from activemine.campaign.samples import PoolRows, pixels_to_png
from activemine.campaign.store import CampaignStore
from activemine.errors import InputError, LeaseError

__all__ = ["CLASS_KEYS", "create_app"]

# digits first, then letters; s (skip) and u (undo) are taken
CLASS_KEYS = "1234567890abcdefghijklmnopqrtvwxy"
COOKIE = "activemine_token"


class AnnotatorBody(BaseModel):
    annotator: str


class SampleBody(AnnotatorBody):
    id: str


class LabelBody(SampleBody):
    label: str


def create_app(store: CampaignStore, *, token: str, round_no: int | None = None,
               lease_seconds: float = 300.0) -> FastAPI:  # fmt: skip
    """The labeling app for ``store``; ``token`` is required on every request."""
    if len(token) < 8:
        raise InputError(f"the token must have at least 8 characters, got {len(token)}")
    queue = LabelingQueue(store, round_no=round_no, lease_seconds=lease_seconds)
    pool = PoolRows(store, "pool", features=False)
    position = {s: i for i, s in enumerate(pool.sids)}
    view = store.meta["view"]
    classes = store.class_names
    if len(classes) > len(CLASS_KEYS):
        raise InputError(f"the page has keys for {len(CLASS_KEYS)} classes, the campaign has {len(classes)}")

    def require_token(request: Request) -> None:
        given = (request.headers.get("x-activemine-token") or request.cookies.get(COOKIE)
                 or request.query_params.get("token") or "")  # fmt: skip
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong token; open the URL printed by `campaign serve`")

    app = FastAPI(title="activemine labeling", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(require_token)])  # fmt: skip

    @app.exception_handler(LeaseError)
    def _conflict(request, exc: LeaseError):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(InputError)
    def _bad_input(request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    def sample(sid: str | None) -> dict | None:
        if sid is None:
            return None
        out = {"id": sid, "kind": view["kind"]}
        if view["kind"] == "image":
            out["image_url"] = "/api/image?" + urlencode({"id": sid})
        else:
            row = pool.row(position[sid])
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
        html = _PAGE.replace("__CONFIG__", json.dumps(config).replace("<", "\\u003c"))
        response = HTMLResponse(html)
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
    def image(id: str):  # noqa: A002  (the query parameter is called id)
        sid = id
        if view["kind"] != "image" or sid not in position:
            raise HTTPException(status_code=404, detail="no such image")
        row = pool.row(position[sid])
        png = pixels_to_png([row[c] for c in view["columns"]], view["shape"])
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return app


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>activemine labeling</title>
<style>
 body { font-family: sans-serif; margin: 2em; }
 #sample-image { width: 280px; height: 280px; image-rendering: pixelated; border: 1px solid #888; }
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
<script>
const CONFIG = __CONFIG__;
const token = new URLSearchParams(location.search).get("token") || "";
let annotator = localStorage.getItem("activemine-annotator") || "";
let current = null;
const $ = (id) => document.getElementById(id);

async function call(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
    "X-Activemine-Token": token}, body: JSON.stringify(Object.assign({annotator}, body || {}))});
  const data = await r.json();
  if (!r.ok) { $("message").textContent = data.detail || ("error " + r.status); return null; }
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
  if (current.kind === "image") { $("sample-image").src = current.image_url; $("sample-image").hidden = false; }
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
