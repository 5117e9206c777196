# An agent using the official MCP Python SDK's client (ClientSession over Streamable HTTP).
# argv: URL STEP...; a step is `list` or `call:TOOL:JSON_ARGS`. One JSON line per step on
# stdout. A call the server (or Cordon) answers with a JSON-RPC error is reported and the agent
# carries on, as an agent framework would.
import asyncio, json, os, ssl, sys, time

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def say(**kw):
    print(json.dumps(kw), flush=True)


async def step(session, spec):
    if spec == "list":
        tools = await session.list_tools()
        say(step="list", tools=sorted(t.name for t in tools.tools))
        return
    _, tool, args = spec.split(":", 2)
    progress = []
    started = time.monotonic()

    async def on_progress(done, total, message):
        progress.append(round(time.monotonic() - started, 3))

    try:
        result = await session.call_tool(tool, json.loads(args), progress_callback=on_progress)
    except Exception as e:  # the SDK raises on a JSON-RPC error answer
        say(step="call", tool=tool, error=str(e), code=getattr(getattr(e, "error", None), "code", None))
        return
    text = " ".join(getattr(c, "text", "") for c in result.content)
    say(step="call", tool=tool, result=text, is_error=bool(result.is_error),
        progress=progress, answered=round(time.monotonic() - started, 3))


async def main():
    verify = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    timeout = httpx2.Timeout(30, read=120)
    async with httpx2.AsyncClient(verify=verify, timeout=timeout) as http:
        async with streamable_http_client(sys.argv[1], http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                for spec in sys.argv[2:]:
                    await step(session, spec)


asyncio.run(main())
