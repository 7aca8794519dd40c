"""Syndicated copies: clustered at ingest, one slot at retrieval, kept right by deletes; the index schema version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag import RagIndexError, RagService
from rag.store import SCHEMA_VERSION
from rag.syndication import clusters, shingles, signature
from tests.conftest import make_settings

WIRE = """Dock workers at the Port of Valdoria walked off the job on Monday, halting the loading of grain ships \
and leaving more than forty vessels waiting at anchor outside the harbour, port officials said.

The Valdoria Dockers Union said the strike would continue until the port authority withdrew a plan to \
replace night crews with automated cranes supplied by a consortium from Rotterdam. Union leader Marta \
Kessling told reporters that nine hundred jobs were at stake and that the workers had not been consulted.

The port authority said the automation plan was needed to keep Valdoria competitive with larger harbours \
along the coast, and that no worker would be dismissed before the end of next year. A spokesman said talks \
with the union would resume on Thursday under a government mediator.

Grain exporters warned that a long stoppage would cost farmers in the region about two million dollars a \
day in storage fees and missed contracts. The agriculture ministry said it was watching the situation \
closely and had asked both sides to reach an agreement before the harvest season begins in earnest.

Valdoria handles roughly a quarter of the country's grain exports, and the last strike there, in 2019, \
lasted eleven days before a pay deal was signed."""

UPDATE = WIRE.replace(
    "A spokesman said talks with the union would resume on Thursday under a government mediator.",
    "Talks resumed on Thursday under a government mediator, but ended without agreement after six hours.",
) + """

On Friday the union said its members would stay out through the weekend, and the port authority said \
it would publish the full automation study so that workers could read it for themselves."""

OTHER = """Truck drivers serving the container terminal at Brennick Bay began a two-day protest on Tuesday over \
waiting times at the terminal gates, which they said now regularly exceed six hours.

The drivers' association said its members lose a day's pay for every long wait and asked the terminal \
operator to open an appointment system for collecting containers. The operator said it had hired extra \
gate staff and expected queues to shorten within weeks, blaming a surge of imports before the holidays.

Shipping lines said the protest had not yet delayed any departures from Brennick Bay, one of the smaller \
ports on the coast, but retailers said some deliveries of furniture and electronics could arrive late. \
The transport ministry said it would meet the drivers' representatives next week to discuss their demands \
and a possible change to the rules on gate fees at the country's ports."""


def _write(folder: Path, name: str, title: str, source: str, published: str, text: str) -> None:
    url = f"https://{source}/news/{name}"
    front = f"---\ntitle: {title}\nsource: {source}\npublished: {published}\nurl: {url}\n---\n"
    (folder / f"{name}.md").write_text(front + text + "\n")


@pytest.fixture
def news(tmp_path: Path) -> Path:
    """Three copies of one wire story (different sources, their own first lines), an update, and another story."""
    folder = tmp_path / "news"
    folder.mkdir()
    _write(folder, "wire-ap", "Valdoria dock workers strike over automation", "apnews.com", "2025-03-03", WIRE)
    _write(folder, "wire-wtop", "Valdoria dockers strike", "wtop.com", "2025-03-04",
           "VALDORIA (AP) - " + WIRE + "\n\nCopyright 2025 The Associated Press. All rights reserved.")
    _write(folder, "wire-kare", "Port strike halts grain ships in Valdoria", "kare11.com", "2025-03-04",
           WIRE + "\n\nMinnesota grain buyers said they were following the strike.")
    _write(folder, "wire-update", "Valdoria strike talks end without a deal", "apnews.com", "2025-03-07", UPDATE)
    _write(folder, "brennick", "Truck drivers protest waiting times at Brennick Bay", "portnews.example",
           "2025-03-04", OTHER)
    return folder


def _cluster_of(svc: RagService) -> dict[str, tuple[str, int]]:
    """file name -> (its cluster's canonical file name, cluster size)."""
    reg = svc._store.article_index()
    name = {aid: str(m["url"]).rsplit("/", 1)[1] for aid, m in reg.items()}
    return {name[aid]: (name.get(str(m.get("dup_of")), "?"), int(m.get("dup_n") or 0)) for aid, m in reg.items()}


def _names(svc: RagService) -> dict[str, str]:
    """article_id -> file name."""
    return {aid: str(m["url"]).rsplit("/", 1)[1] for aid, m in svc._store.article_index().items()}


def test_signatures_see_copies_and_updates_not_the_same_topic() -> None:
    a, upd, other = shingles(WIRE), shingles(UPDATE), shingles(OTHER)
    assert len(a & upd) / len(a | upd) > 0.5  # the update is a near-duplicate by the measured threshold
    assert len(a & other) / len(a | other) < 0.05
    heads = clusters({
        "a": (signature(WIRE), "2025-03-03"),
        "u": (signature(UPDATE), "2025-03-07"),
        "o": (signature(OTHER), "2025-03-04"),
        "late": (signature(WIRE), "2025-06-01"),  # the same text months later: recycled, not a copy
        "stub": (signature("Please enable JavaScript."), "2025-03-03"),
    })
    assert heads["a"] == heads["u"] == "a"
    assert heads["o"] == "o" and heads["late"] == "late" and heads["stub"] == "stub"


def test_copies_take_one_slot_and_list_the_others(tmp_path: Path, news: Path) -> None:
    svc = RagService(make_settings(tmp_path / "data"))
    report = svc.ingest([news])
    assert report.syndication["clusters"] == 1 and report.syndication["articles_in_clusters"] == 4
    ids = _cluster_of(svc)
    wire = {"wire-ap", "wire-wtop", "wire-kare", "wire-update"}
    assert {ids[w] for w in wire} == {("wire-ap", 4)}  # the earliest published copy leads
    assert ids["brennick"] == ("brennick", 1)

    name = _names(svc)
    answer = svc.ask("Why did the dock workers at the Port of Valdoria strike?", k=5)
    assert not answer.refused
    in_top = {name[p.article_id] for p in answer.contexts}
    assert len(in_top & wire) == 1, in_top
    lead = next(p for p in answer.contexts if name[p.article_id] in wire)
    assert {name[o["article_id"]] for o in lead.also} == wire - {name[lead.article_id]}
    assert all(o["source"] and o["url"] and o["title"] and o["published"] for o in lead.also)
    ctx = answer.to_dict()["contexts"]
    assert next(c for c in ctx if c["article_id"] == lead.article_id)["also_reported_by"] == lead.also
    assert answer.citations
    for cit in answer.citations:  # a citation opens the article whose text it quotes
        article = svc.get_article(cit.article_id)
        assert article is not None and article.text[cit.start : cit.end] == cit.quote
        if name[cit.article_id] in wire:
            assert {name[o["article_id"]] for o in cit.also_reported_by} == wire - {name[cit.article_id]}

    # deleting the canonical copy hands the cluster to the next earliest member (by date, then id)
    head = next(aid for aid, n in name.items() if n == "wire-ap")
    svc.delete_article(head)
    ids = _cluster_of(svc)
    rest = wire - {"wire-ap"}
    new_head = ids["wire-wtop"][0]
    assert new_head in {"wire-wtop", "wire-kare"} and {ids[w] for w in rest} == {(new_head, 3)}
    passages = svc.retrieve("Valdoria dock workers strike automation", k=5)
    assert len({name[p.article_id] for p in passages} & rest) == 1
    kept = next(p for p in passages if name[p.article_id] in rest)
    assert name[str(kept.metadata["dup_of"])] == new_head
    assert {name[o["article_id"]] for o in kept.also} == rest - {name[kept.article_id]}


def test_collapsing_off_lets_copies_take_several_slots(tmp_path: Path, news: Path) -> None:
    svc = RagService(make_settings(tmp_path / "data", collapse_duplicates=False))
    svc.ingest([news])
    passages = svc.retrieve("Why did the dock workers at the Port of Valdoria strike?", k=5)
    name = _names(svc)
    # (not all four: MMR already drops near-identical chunks)
    assert len({name[p.article_id] for p in passages if "wire" in name[p.article_id]}) >= 2
    assert all(not p.also for p in passages)


def test_schema_version_newer_index_is_refused_older_one_upgraded(tmp_path: Path, news: Path) -> None:
    settings = make_settings(tmp_path / "data")
    svc = RagService(settings)
    svc.ingest([news])
    assert svc.stats()["schema_version"] == SCHEMA_VERSION
    assert svc.doctor().schema_version == SCHEMA_VERSION

    # an index stored before clusters: no signatures, no dup_of, schema 1 -> not collapsed, never wrong
    store = svc._store
    ids = list(store.article_index())
    store.set_article_fields({a: {"minhash": None, "dup_of": None, "dup_n": None} for a in ids})
    store.set_clusters({a: {"dup_of": None, "dup_n": None} for a in ids})
    store.set_schema_version(1)
    svc.close()
    old = RagService(settings)
    passages = old.retrieve("Why did the dock workers at the Port of Valdoria strike?", k=5)
    assert old._store.schema_version == 1
    name = _names(old)
    assert len({name[p.article_id] for p in passages if "wire" in name[p.article_id]}) >= 2
    doc = old.doctor()
    assert not doc.healthy and any("older version" in p for p in doc.problems)
    report = old.ingest([news])  # nothing to embed: clusters come from the stored text
    assert report.chunks_added == 0 and report.syndication["upgraded"] == 1
    assert report.syndication["signed"] == 5 and report.syndication["clusters"] == 1
    assert old._store.schema_version == SCHEMA_VERSION and old.doctor().healthy
    passages = old.retrieve("Why did the dock workers at the Port of Valdoria strike?", k=5)
    assert len({name[p.article_id] for p in passages if "wire" in name[p.article_id]}) == 1

    # an index from a newer version: one clear line, not silently worse results
    old._store.set_schema_version(SCHEMA_VERSION + 1)
    old.close()
    newer = RagService(settings)
    with pytest.raises(RagIndexError, match="built by a newer version"):
        newer.ask("Why did the dock workers strike?")


def _also_answer() -> Any:
    from rag import Answer, Citation

    also = [
        {"article_id": "b", "source": "wtop.com", "title": "Valdoria dockers strike", "url": "https://wtop.com/b",
         "published": "2025-03-04"},
        {"article_id": "c", "source": "kare11.com", "title": "Port strike halts grain ships", "url": "",
         "published": None},
    ]
    cit = Citation(1, "a:h:0", "a", "Valdoria dock workers strike", False, "apnews.com", "2025-03-03",
                   "https://apnews.com/a", "Dock workers walked off the job.", 0, 33, also_reported_by=also)
    return Answer("q", "q", "Dock workers walked off the job. [1]", False, "extractive", citations=[cit])


def _render_citation() -> None:
    import streamlit as st

    from ui.answers import _citation

    a = st.session_state["answer"]
    _citation("x", a.citations[0], a, st.session_state["svc"])


def test_also_reported_by_is_shown_under_the_citation(capsys: pytest.CaptureFixture[str]) -> None:
    from streamlit.testing.v1 import AppTest

    from rag.cli import _print_answer
    from ui.render import unescape_md

    answer = _also_answer()
    _print_answer(answer)
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "also reported by: wtop.com (2025-03-04): Valdoria dockers strike <https://wtop.com/b>;" in out
    assert "kare11.com (undated): Port strike halts grain ships" in out

    at = AppTest.from_function(_render_citation)
    at.session_state["answer"] = answer
    at.session_state["svc"] = None
    at.run()
    assert not at.exception
    captions = [unescape_md(c.value) for c in at.caption]
    assert any(c.startswith("Also reported by: wtop.com (2025-03-04): Valdoria dockers strike") for c in captions)
