"""``ChatService``: one message in, one reply out, with the conversation kept per user.

Order of handling: an attempt to approve (or edit, reject, revise) is refused; a
command (see ``_commands``) is answered deterministically; anything else goes to the
LLM when ``DECISIONOPS_LLM_BASE_URL`` is set, else to the free-phrasing recogniser
(``_intents``), and what that does not understand gets the list of what can be asked.
Both sides of every exchange are stored (``chat_messages``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from openai import OpenAI

from decisionops.agent.chat import _intents
from decisionops.agent.chat._commands import (
    NOTHING_ANSWERED,
    REFUSE_APPROVAL,
    is_approval_attempt,
    mentions_an_answer,
    run_command,
)
from decisionops.agent.chat._llm import LlmChat
from decisionops.agent.chat._tools import ChatTools, ChatUser
from decisionops.agent.errors import DecisionOpsError
from decisionops.agent.settings import Settings

__all__ = ["ChatReply", "ChatService"]


@dataclass(frozen=True)
class ChatReply:
    reply: str
    conversation_id: str
    mode: Literal["commands", "llm"]
    data: Any = None
    refused: tuple[dict[str, str], ...] = ()
    """What was asked for and refused (``tool``, ``error``): nothing of it happened."""


class ChatService:
    def __init__(self, runtime: Any, settings: Settings, *, max_turns: int = 6) -> None:
        self._rt = runtime
        self._client: OpenAI | None = None
        self._llm: LlmChat | None = None
        if settings.llm_base_url:
            key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
            self._client = OpenAI(base_url=settings.llm_base_url, api_key=key, timeout=30.0,
                                  max_retries=1)
            prompt = (resources.files("decisionops.agent.chat") / "system_prompt.md").read_text("utf-8")
            self._llm = LlmChat(self._client, model=settings.llm_model or "default",
                                system_prompt=prompt, max_turns=max_turns)

    @property
    def mode(self) -> Literal["commands", "llm"]:
        return "llm" if self._llm else "commands"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def history(self, user: ChatUser, limit: int = 50) -> dict[str, Any]:
        conversation = self._rt.store.chat.conversation(user.name)
        messages = self._rt.store.chat.messages(conversation, limit=limit)
        return {"conversation_id": conversation, "mode": self.mode,
                "messages": [{"role": m["role"], "content": m["content"],
                              "at": m["at"].isoformat()} for m in messages]}

    def reply(self, user: ChatUser, message: str) -> ChatReply:
        store = self._rt.store
        conversation = store.chat.conversation(user.name)
        tools = ChatTools(self._rt, user)
        data: Any = None
        meta: dict[str, Any] = {"mode": "commands"}
        refused: list[dict[str, str]] = []
        if is_approval_attempt(message):
            text = REFUSE_APPROVAL
            refused = [{"tool": "approve", "error": REFUSE_APPROVAL}]
        else:
            try:
                handled = run_command(tools, message)
            except DecisionOpsError as exc:
                handled = (f"error: {exc.message}", None)
            if handled is not None:
                text, data = handled
            elif self._llm is None:
                vocab = _intents.StoreVocabulary(self._rt)
                try:
                    understood = _intents.answer(tools, vocab, message)
                except DecisionOpsError as exc:
                    understood = (f"error: {exc.message}", None)
                text, data = understood or (_intents.questions(vocab), None)
                if mentions_an_answer(message):
                    text = f"{text}\n{NOTHING_ANSWERED}"
            else:
                history = store.chat.messages(conversation, limit=20)
                turn = self._llm.reply(tools, history, message)
                text, refused = turn.reply, turn.refused
                meta = {"mode": "llm", "tools": turn.tool_calls, "failed": turn.failed,
                        "refused": refused}
        store.chat.add_messages(conversation, [("user", message, None),
                                               ("assistant", text, meta)])
        return ChatReply(text, conversation, meta["mode"], data, tuple(refused))
