"""Real servers the tool tests talk to (run as subprocesses or local HTTP servers)."""
