"""A prefill/decode proxy: each request is prefilled on one server and decoded on another.

The client sees one OpenAI-compatible endpoint. For each request the proxy asks the
prefill server for a single token with `kv_transfer_params: {"do_remote_decode": true}`,
which makes that server keep the prompt's KV cache for a peer and answer with where to
find it; the proxy then sends the original request, with those parameters, to the
decode server, which pulls the KV cache through its connector (NIXL) and streams the
reply back. It runs like the servers, through chapter 6's launcher:

    python snippets/ch06/serve.py start --name proxy --engine script --port 8200 -- \
        snippets/ch07/pd_proxy.py --prefill http://127.0.0.1:8201 --decode http://127.0.0.1:8202
"""

import argparse
import json
import sys
import urllib.request

from aiohttp import ClientSession, ClientTimeout, web

# --8<-- [start:prefill]
PREFILL_ONLY = {"do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
                "remote_block_ids": None, "remote_host": None, "remote_port": None}


async def handle(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    session: ClientSession = request.app["session"]
    first = {k: v for k, v in body.items() if k not in ("stream_options", "min_tokens")}
    first.update(max_tokens=1, stream=False, kv_transfer_params=PREFILL_ONLY)
    if "max_completion_tokens" in first:
        first["max_completion_tokens"] = 1
    async with session.post(request.app["prefill"] + request.path, json=first) as r:
        if r.status != 200:
            return web.Response(status=r.status, body=await r.read(),
                                content_type="application/json")
        params = (await r.json()).get("kv_transfer_params")
    # The decode server finds the prompt's KV cache through these parameters.
    second = dict(body, kv_transfer_params=params)
    async with session.post(request.app["decode"] + request.path, json=second) as r:
        out = web.StreamResponse(status=r.status, headers={"Content-Type": r.content_type})
        await out.prepare(request)
        async for chunk in r.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out
# --8<-- [end:prefill]


async def health(request: web.Request) -> web.Response:
    for role in ("prefill", "decode"):
        try:
            async with request.app["session"].get(request.app[role] + "/health") as r:
                if r.status != 200:
                    return web.Response(status=503, text=f"{role} answers {r.status}")
        except OSError:
            return web.Response(status=503, text=f"{role} is not answering")
    return web.Response(text="ok")


async def forward_get(request: web.Request) -> web.Response:
    """/v1/models and /metrics come from the decode server."""
    async with request.app["session"].get(request.app["decode"] + request.path) as r:
        return web.Response(status=r.status, body=await r.read(),
                            content_type=r.content_type)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefill", required=True, help="URL of the prefill server")
    ap.add_argument("--decode", required=True, help="URL of the decode server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8200)
    args = ap.parse_args()
    for role in ("prefill", "decode"):
        url = getattr(args, role).rstrip("/")
        if not answers(url):
            print(f"error: the {role} server at {url} is not answering; start it first",
                  file=sys.stderr)
            sys.exit(1)
        setattr(args, role, url)

    async def on_start(app):
        app["session"] = ClientSession(timeout=ClientTimeout(total=None))

    async def on_stop(app):
        await app["session"].close()

    app = web.Application(client_max_size=64 * 2**20)
    app.update(prefill=args.prefill, decode=args.decode)
    app.on_startup.append(on_start)
    app.on_cleanup.append(on_stop)
    app.router.add_post("/v1/completions", handle)
    app.router.add_post("/v1/chat/completions", handle)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", forward_get)
    app.router.add_get("/metrics", forward_get)
    print(json.dumps({"proxy": f"http://{args.host}:{args.port}", "prefill": args.prefill,
                      "decode": args.decode}), flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
