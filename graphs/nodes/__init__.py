"""Nodes of the decision graph, one per file. Nodes do the work; ``graphs.builder`` wires."""
