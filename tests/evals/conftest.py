"""Eval tests share the scripted-server fixture of the LLM tests."""

from tests.fakes.openai_server import openai_server  # noqa: F401 - fixture
