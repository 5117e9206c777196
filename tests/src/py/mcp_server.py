# An MCP server built with the official Python SDK, served over HTTPS (Streamable HTTP) for the
# end-to-end tests and the demo. argv: DIR HOST PORT. Every tool call it runs is appended to
# DIR/calls.log, so a test can tell what reached the server.
import asyncio, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from tls_files import pem_files

d, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
cert, key = pem_files(d)
server = MCPServer("cordon-e2e-tools")


def ran(name, detail):
    with open(os.path.join(d, "calls.log"), "a") as f:
        f.write(f"{name} {detail}\n")


@server.tool()
def search_issues(q: str) -> str:
    """Search the issue tracker."""
    ran("search_issues", q)
    return f"3 issues match {q!r}"


@server.tool()
def delete_repository(owner: str, repo: str) -> str:
    """Delete a repository."""
    ran("delete_repository", f"{owner}/{repo}")
    return f"deleted {owner}/{repo}"


@server.tool()
def merge_pr(number: int) -> str:
    """Merge a pull request."""
    ran("merge_pr", number)
    return f"merged #{number}"


@server.tool()
async def count_slowly(n: int, ctx: Context) -> str:
    """Counts to n, reporting progress every 0.6 s before answering."""
    for i in range(n):
        await ctx.report_progress(i + 1, n)
        await asyncio.sleep(0.6)
    ran("count_slowly", n)
    return f"counted to {n}"


app = server.streamable_http_app(
    # The test's names are not localhost; Cordon is what stands between agent and server here.
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    host=host,
)
uvicorn.run(app, host=host, port=port, ssl_certfile=cert, ssl_keyfile=key, log_level="warning")
