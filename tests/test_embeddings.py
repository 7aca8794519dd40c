"""The local model's batching: texts grouped by token count, padding bounded, vectors independent of batching."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embeddings import PAD_SHARE, LocalMiniLMEmbeddings, _batches
from rag.errors import ConfigError


@pytest.mark.parametrize("size", [1, 3, 8])
def test_batches_cover_every_text_once_and_pad_little(size: int) -> None:
    rng = np.random.RandomState(0)
    lengths = [int(n) for n in rng.randint(5, 256, size=200)] + [40] * 30
    batches = _batches(lengths, size)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert 1 <= len(b) <= size
        ns = [lengths[i] for i in b]
        assert len(b) * max(ns) - sum(ns) <= PAD_SHARE * sum(ns)
    # texts of equal length fill whole batches
    assert any(len(b) == size and {lengths[i] for i in b} == {40} for b in batches)
    assert _batches([], size) == []


def test_vectors_do_not_depend_on_what_is_encoded_beside_them() -> None:
    emb = LocalMiniLMEmbeddings()
    short = "Russia wants sanctions relief."
    long = ("Officials said the talks would resume in Istanbul next week, according to several people familiar "
            "with the plans who spoke on condition of anonymity because they were not authorised to speak.")
    alone, (words_alone,) = emb.encode_words([short])
    together, (words_together, _) = emb.encode_words([short, long])
    np.testing.assert_allclose(alone[0], together[0], atol=1e-6)
    np.testing.assert_allclose(words_alone.vectors, words_together.vectors, atol=1e-6)
    assert words_alone.words == words_together.words
    spans = [[(0, 6), (7, len(short))], [(0, 9)]]
    v, sv = emb.embed_with_spans([short, long], spans)
    np.testing.assert_allclose(v[0], alone[0], atol=1e-6)
    assert [s.shape for s in sv] == [(2, 384), (1, 384)]


def test_a_model_cut_after_three_layers_is_a_different_encoder_of_the_same_words() -> None:
    full, cut = LocalMiniLMEmbeddings(), LocalMiniLMEmbeddings(layers=3)
    text = "Four of the officials said Russia is using talks with Washington to seek sanctions relief."
    (v6,), (w6,) = full.encode_words([text])
    (v3,), (w3,) = cut.encode_words([text])
    assert (full.layers, cut.layers) == (6, 3)
    assert w3.words == w6.words and w3.starts == w6.starts  # the same tokenizer and word grouping
    np.testing.assert_allclose(np.linalg.norm(w3.vectors, axis=1), 1.0, atol=1e-5)
    assert float(v3 @ v6) < 0.99  # another layer's states, not the last one's


@pytest.mark.parametrize("layers", [0, 7])
def test_layers_outside_the_model_are_a_config_error(layers: int) -> None:
    with pytest.raises(ConfigError, match="layers must be 1-6"):
        LocalMiniLMEmbeddings(layers=layers)
