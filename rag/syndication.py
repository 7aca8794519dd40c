"""Syndicated copies: near-duplicate articles found by MinHash LSH on word 5-grams, grouped into clusters."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rag.store import ChromaStore
    from rag.types import Passage

log = logging.getLogger(__name__)

NUM_PERM = 128  # MinHash permutations: the Jaccard estimate's standard error is about 0.044 at 0.5
SEED = 1  # fixed, with the scheme: signatures stored in the registry must stay comparable across runs
SCHEME = "affine32"  # datasketch 2's 32-bit hash values (4 bytes per permutation in the registry)
SHINGLE_WORDS = 5  # word 5-grams, after lower-casing (whitespace and punctuation fall out of \w+)
THRESHOLD = 0.5  # estimated Jaccard over shingles: the threshold measured in docs/benchmarks.md
UNDATED_THRESHOLD = 0.8  # without two dates to compare, only near-identical texts are linked
WINDOW_DAYS = 7  # copies and updates appear within days; evergreen text recycled a year later does not cluster
MIN_SHINGLES = 50  # shorter texts (paywall or error stubs, identical across unrelated stories) never cluster
WORD = re.compile(r"\w+")


def shingles(text: str) -> set[str]:
    """The text's word 5-grams, lower-cased."""
    words = WORD.findall(text.lower())
    n = SHINGLE_WORDS
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def signature(text: str) -> str:
    """The text's MinHash signature, packed for the registry; "" when it is too short to compare."""
    from datasketch import MinHash

    grams = shingles(text)
    if len(grams) < MIN_SHINGLES:
        return ""
    mh = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
    mh.update_batch([g.encode("utf-8") for g in grams])
    return base64.b64encode(mh.hashvalues.astype(np.uint32).tobytes()).decode()


def _unpack(packed: str) -> Any:
    from datasketch import LeanMinHash

    values = np.frombuffer(base64.b64decode(packed), dtype=np.uint32)
    return LeanMinHash(seed=SEED, hashvalues=values, scheme=SCHEME)


def _day(published: str) -> date | None:
    try:
        return date.fromisoformat(published[:10]) if published else None
    except ValueError:
        return None


def _linked(jaccard: float, a: date | None, b: date | None, threshold: float, window_days: int | None) -> bool:
    if a is None or b is None:
        return jaccard >= max(threshold, UNDATED_THRESHOLD)
    return jaccard >= threshold and (window_days is None or abs((a - b).days) <= window_days)


def clusters(
    records: Mapping[str, tuple[str, str]], threshold: float = THRESHOLD, window_days: int | None = WINDOW_DAYS
) -> dict[str, str]:
    """article_id -> its cluster's canonical article_id, from article_id -> (packed signature, published).

    Two articles are linked when their estimated Jaccard reaches THRESHOLD and they were published within
    WINDOW_DAYS; clusters are the connected groups. The canonical member is the earliest published (undated
    last), then the smallest id, so the choice does not depend on ingest order.
    """
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sigs = {aid: _unpack(sig) for aid, (sig, _) in records.items() if sig}
    for aid, mh in sigs.items():
        lsh.insert(aid, mh)
    parent = {aid: aid for aid in records}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    days = {aid: _day(pub) for aid, (_, pub) in records.items()}
    for aid, mh in sigs.items():
        for other in lsh.query(mh):
            if other <= aid:
                continue
            if _linked(float(mh.jaccard(sigs[other])), days[aid], days[other], threshold, window_days):
                ra, rb = find(aid), find(other)
                if ra != rb:
                    parent[ra] = rb
    groups: dict[str, list[str]] = {}
    for aid in records:
        groups.setdefault(find(aid), []).append(aid)
    out: dict[str, str] = {}
    for members in groups.values():
        head = min(members, key=lambda m: (records[m][1] or "9999-99-99", m))
        out.update((m, head) for m in members)
    return out


@dataclass
class RefreshReport:
    signed: int = 0  # stored articles given a signature now (an index built before clusters)
    changed: int = 0  # articles whose cluster changed
    clusters: int = 0  # clusters of two or more articles
    clustered: int = 0  # articles in them
    upgraded: bool = False  # the index's schema version was raised
    sizes: dict[str, int] = field(default_factory=dict)  # canonical id -> size, for clusters of 2+


def refresh(store: ChromaStore, batch: int = 200) -> RefreshReport:
    """Bring every article's cluster up to date (after an ingest or a delete); no re-embedding.

    Articles stored without a signature (by an older version) are signed from their stored text first;
    then the clusters are recomputed from all signatures, and only the articles whose cluster changed are
    rewritten (chunks first, the registry record last). Finally the index is marked as holding clusters.
    """
    from rag.store import SCHEMA_VERSION

    report = RefreshReport()
    registry = store.article_index()
    unsigned = [aid for aid, m in registry.items() if "minhash" not in m]
    for i in range(0, len(unsigned), batch):
        sigs = {}
        for aid in unsigned[i : i + batch]:
            article = store.get_article(aid)
            sigs[aid] = signature(article.text) if article is not None else ""
        store.set_article_fields({aid: {"minhash": s} for aid, s in sigs.items()})
        for aid, s in sigs.items():
            registry[aid]["minhash"] = s
        report.signed += len(sigs)
    heads = clusters({aid: (str(m.get("minhash") or ""), str(m.get("published") or "")) for aid, m in registry.items()})
    sizes: dict[str, int] = {}
    for head in heads.values():
        sizes[head] = sizes.get(head, 0) + 1
    changed = {
        aid: {"dup_of": head, "dup_n": sizes[head]}
        for aid, head in heads.items()
        if registry[aid].get("dup_of") != head or registry[aid].get("dup_n") != sizes[head]
    }
    if changed:
        store.set_clusters(changed)
    report.changed = len(changed)
    report.sizes = {h: n for h, n in sizes.items() if n > 1}
    report.clusters = len(report.sizes)
    report.clustered = sum(report.sizes.values())
    if store.schema_version < SCHEMA_VERSION:
        store.set_schema_version(SCHEMA_VERSION)
        report.upgraded = True
    if report.signed or report.changed:
        log.info("syndicated copies: %d clusters of %d articles (%d changed, %d signed from stored text)",
                 report.clusters, report.clustered, report.changed, report.signed)
    return report


def collapse(ranked: Iterable[Passage]) -> list[Passage]:
    """Ranked passages with each cluster's copies dropped: only the best-ranked member article's passages stay."""
    leader: dict[str, str] = {}
    out = []
    for p in ranked:
        cluster = str(p.metadata.get("dup_of") or p.article_id)
        if leader.setdefault(cluster, p.article_id) == p.article_id:
            out.append(p)
    return out


def attach_members(store: ChromaStore, chosen: list[Passage], keep: Any = None) -> None:
    """Set `also` on each chosen passage: its cluster's other articles (source, title, url, published, article_id).

    keep: a predicate on a member's metadata (e.g. a date filter), else every member is listed.
    """
    wanted = {str(p.metadata.get("dup_of")) for p in chosen if int(p.metadata.get("dup_n") or 1) > 1}
    if not wanted:
        return
    members = store.cluster_members(sorted(wanted))
    for p in chosen:
        cluster = str(p.metadata.get("dup_of") or "")
        others = [
            {
                "article_id": aid,
                "source": str(m.get("source") or ""),
                "title": str(m.get("title") or ""),
                "url": str(m.get("url") or ""),
                "published": str(m.get("published") or "")[:10] or None,
            }
            for aid, m in members.get(cluster, [])
            if aid != p.article_id and (keep is None or keep(m))
        ]
        others.sort(key=lambda o: (o["published"] or "9999", o["article_id"]))
        p.also = others


def also_line(also: list[dict[str, Any]]) -> str:
    """"also reported by" entries as one line: "source (YYYY-MM-DD): title <url>; ..."."""
    parts = []
    for o in also:
        who = o.get("source") or o.get("url") or o.get("article_id")
        when = f" ({o['published']})" if o.get("published") else " (undated)"
        url = f" <{o['url']}>" if o.get("url") else ""
        parts.append(f"{who}{when}: {o.get('title') or ''}{url}")
    return "; ".join(parts)
