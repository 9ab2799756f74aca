"""A real MCP server (the ``mcp`` SDK's ``MCPServer``) for the tool tests: a help desk
that opens cases once per idempotency key and appends every call it receives to the file
named by ``DESK_CALLS`` (so a test counts effects at the tool).

    python -m tests.tools.servers.mcp_desk                # stdio
    python -m tests.tools.servers.mcp_desk http PORT      # streamable HTTP on 127.0.0.1
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("desk")


def _log(entry: dict) -> None:
    with Path(os.environ["DESK_CALLS"]).open("a") as out:
        out.write(json.dumps(entry) + "\n")


@server.tool(annotations=ToolAnnotations(destructiveHint=False))
def open_case(account_id: str, summary: str, idempotency_key: str) -> dict:
    """Open a support case for an account."""
    _log({"tool": "open_case", "account_id": account_id, "summary": summary,
          "idempotency_key": idempotency_key, "token": os.environ.get("DESK_TOKEN")})
    case = {"case_id": f"CASE-{idempotency_key[-8:]}", "account_id": account_id}
    if "odd" in summary:  # a server answering numbers JSON cannot carry
        case["scores"] = [1, {"confidence": float("nan"), "reach": float("inf")}]
    return case


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def case_count(account_id: str) -> int:
    """How many cases an account has (reads only: the calls file, not logged)."""
    path = Path(os.environ["DESK_CALLS"])
    if not path.exists():
        return 0
    calls = [json.loads(line) for line in path.read_text().splitlines() if line]
    return len({c["idempotency_key"] for c in calls
                if c.get("tool") == "open_case" and c.get("account_id") == account_id})


@server.tool()
def crash() -> str:
    """Ends the server process (tests restart it)."""
    os._exit(3)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        import uvicorn

        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[2]),
                    log_level="warning")
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
