"""Kind aliases: a source's name for a kind (``equipment_failure``) mapped onto the kind
our playbooks answer (``failure``), applied to every prediction at intake, whatever the
path (CLI file, HTTP body, directory or SQL source); the prediction keeps the name it
arrived with in ``kind_as_received``. The table is ``Settings.kind_aliases``, validated
there (no chains, no self-maps); this module only applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from decisionops.agent.models import Prediction

__all__ = ["apply_kind_aliases"]


def apply_kind_aliases(predictions: Sequence[Prediction], aliases: Mapping[str, str]
                       ) -> list[Prediction]:
    """The predictions with aliased kinds replaced; the others unchanged (same objects)."""
    if not aliases:
        return list(predictions)
    return [p if p.kind not in aliases else
            p.model_copy(update={"kind": aliases[p.kind], "kind_as_received": p.kind})
            for p in predictions]
