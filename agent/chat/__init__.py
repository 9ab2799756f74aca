"""The ops chat: ask what is pending, why a decision or an entity went the way it did,
what the ledger says, the metrics; operators can also hold or release an entity or a
playbook and re-run triage. Chat can never approve.

Without an LLM a documented set of commands is answered deterministically (``_commands``)
and common questions in free phrasing are recognised (``_intents``);
with ``DECISIONOPS_LLM_BASE_URL`` set, an agent loop with tool calling answers natural
language (``_llm``) using the same tools and permissions (``_tools``). Conversations
persist per user. Served by ``/v1/chat``, the web chat panel and ``decisionops chat``.
"""

from decisionops.agent.chat._commands import HELP
from decisionops.agent.chat._service import ChatReply, ChatService
from decisionops.agent.chat._tools import ChatTools, ChatUser

__all__ = ["HELP", "ChatReply", "ChatService", "ChatTools", "ChatUser"]
