"""The answerer's fitted values (rag/calibration.json): sentence-scoring weights and the refusal gate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ConfigError

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Calibration:
    """Sentence-scoring weights and the refusal gate (fitted on the golden dev split).

    The gate's statistic is max over candidate sentences of
    gate_w_semantic * cosine(question, sentence) + gate_w_lexical * IDF-weighted term coverage,
    plus gate_w_dense * the top passage's cosine; below gate_threshold the question is refused.
    """

    w_semantic: float = 0.6
    w_lexical: float = 0.25
    w_rank: float = 0.15
    keep_ratio: float = 0.75
    gate_w_semantic: float = 1.0
    gate_w_lexical: float = 0.25
    gate_w_dense: float = 0.0
    gate_threshold: float = 0.54
    mmr_lambda: float = 0.5  # broad questions: weight of a sentence's similarity to those already taken
    broad_keep_ratio: float = 0.75  # broad questions: keep floor as a share of the best sentence's score
    # "Which ...?" / "Who ...?": added to a sentence that names something the question does not (rag.answer_type);
    # swept on the RealTime QA H1 dev questions (python -m evals.answer_type --name-bonus X): 0, 0.03, 0.06, 0.1,
    # 0.15, 0.2, 0.3 gave 56, 57, 59, 60, 61, 61, 61 of 116 answers holding the quiz answer
    name_bonus: float = 0.15

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        """The fitted values; a missing or unreadable file is an error, never silent defaults."""
        try:
            data = json.loads(path.read_text())
            return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"The answerer's calibration {path} is missing or unreadable ({exc.__class__.__name__}) - restore "
                "it from git or refit it: python -m evals.calibrate."
            ) from exc
