"""Sources: foreign prediction formats mapped onto ``agent.models.Prediction``.

Batch files (CSV, JSON Lines, Parquet), already-parsed JSON records (a webhook body) and
raw model-server bodies (MLflow ``/invocations``, Open Inference Protocol / KServe V2
``infer``; or a response of scores only, joined by row order to the input table or
request it scored: ``iter_scored``) each become a ``SourceBatch``: the good predictions,
one ``RowError`` per problem in a skipped row, and the rows read. The ``iter_*`` readers
stream them as chunks of ``batch_rows`` rows to store one after the other (bounded
memory); the ``read_*``/``parse_*`` ones return the whole input as one batch. A
``FieldMapping`` says which column or key feeds which field. Problems with the input as
a whole (too large, not UTF-8 or JSON, wrong body shape, missing header columns, row
counts that do not match) raise ``agent.errors.InvalidInputError`` and nothing is
returned.

``apply_kind_aliases`` maps a source's kind names onto ours (``kind_aliases``);
``prepare`` applies it and makes each prediction the ``PredictionRow`` the store keeps
(its JSON and row hash), which every batch the runtime accepts goes through.
``same_content`` says whether a row re-sent under a stored id says what the stored one
says (what the intake filled in, such as the clock's time, left out).
``iter_prepared`` streams a file as such rows, mapped and prepared in worker processes
when the file is large. ``IngestSummary`` is what an intake reports, in rows, on every
channel (CLI and HTTP), added up batch by batch by ``IngestTally``.

Not here: polling, webhooks, SQL or streams (the scheduler and API drive these
readers), triage, and persistence.
"""

from decisionops.agent.sources._aliases import apply_kind_aliases
from decisionops.agent.sources._batch import RowError, SourceBatch, SourceLimits, collect
from decisionops.agent.sources._files import (
    STDIN,
    FileFormat,
    as_file,
    iter_file,
    read_csv,
    read_file,
    read_jsonl,
    read_records,
    said_of_input,
)
from decisionops.agent.sources._kserve import iter_kserve_v2, parse_kserve_v2
from decisionops.agent.sources._mapping import FieldMapping
from decisionops.agent.sources._mlflow import INDEX_COLUMN, iter_mlflow, parse_mlflow
from decisionops.agent.sources._prepared import PredictionRow, PreparedChunk, prepare, same_content
from decisionops.agent.sources._serving import BodyKind, Positive, detect, iter_scored, parse_scored
from decisionops.agent.sources._summary import IngestSummary, IngestTally

__all__ = [
    "INDEX_COLUMN",
    "STDIN",
    "BodyKind",
    "FieldMapping",
    "FileFormat",
    "IngestSummary",
    "IngestTally",
    "Positive",
    "PredictionRow",
    "PreparedChunk",
    "RowError",
    "SourceBatch",
    "SourceLimits",
    "apply_kind_aliases",
    "as_file",
    "collect",
    "detect",
    "iter_file",
    "iter_kserve_v2",
    "iter_mlflow",
    "iter_scored",
    "parse_kserve_v2",
    "parse_mlflow",
    "parse_scored",
    "prepare",
    "read_csv",
    "read_file",
    "read_jsonl",
    "read_records",
    "said_of_input",
    "same_content",
]
