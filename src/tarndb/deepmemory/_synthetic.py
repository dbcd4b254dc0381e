"""Synthetic queries made offline from the documents themselves (no model, no download).

Deep Memory trains on them beside the user's queries so that every document of the table,
not only those some training query is about, takes part in the objective (``pseudo_queries``
of :meth:`DeepMemory.train`):

- ``first_sentence``: each document's opening sentence;
- ``sentences``: up to ``per_doc`` sentences drawn from each document (every sentence of a
  document is a candidate; a one-sentence document gives that sentence);
- ``keywords``: each document's most distinctive words (TF-IDF over the table, English stop
  words out), in the order the document uses them, as a keyword query would list them.

Everything is deterministic for a seed, so a resumed job makes the same queries.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..search._text import ENGLISH_STOP_WORDS, normalize_text

#: a sentence ends at . ! or ? followed by white space and an upper-case letter, digit or
#: bracket (so "e.g. the" and "p < 0.05." inside a sentence do not split it)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_WORD = re.compile(r"\w[\w\-]*\w|\w")
#: a sentence shorter than this many words is not a query of its own
MIN_WORDS = 4
MAX_CHARS = 300
#: words that say nothing about a document's topic in any corpus, on top of the stop words
_FILLER = frozenset("""also been being can could did does from had has have here however
how into its may might more most much must our over should than them they those through
thus very was were what when where which while who whom why would you your we us one two
""".split())


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` with at least :data:`MIN_WORDS` words, each cut to
    :data:`MAX_CHARS` characters."""
    out = []
    for s in _SENTENCE_END.split(text or ""):
        s = " ".join(s.split())
        if len(s.split()) >= MIN_WORDS:
            out.append(s[:MAX_CHARS])
    return out


def first_sentence(text: str, max_chars: int = MAX_CHARS) -> str:
    """A document's opening sentence (or its first ``max_chars``)."""
    m = re.search(r"(?<=[.!?])\s", text)
    head = text[:m.start()] if m else text
    return head[:max_chars].strip()


def sentence_queries(texts: Sequence[str], per_doc: int = 2, seed: int = 0
                     ) -> tuple[list[int], list[str]]:
    """(document index, sentence) pairs: up to ``per_doc`` sentences drawn per document."""
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    out: list[str] = []
    for i, text in enumerate(texts):
        ss = sentences(text)
        if not ss:
            continue
        pick = sorted(rng.choice(len(ss), size=min(per_doc, len(ss)), replace=False).tolist())
        for p in pick:
            rows.append(i)
            out.append(ss[p])
    return rows, out


def keyword_queries(texts: Sequence[str], terms: int = 6) -> tuple[list[int], list[str]]:
    """(document index, keyword query): the ``terms`` words of each document with the
    highest TF-IDF over ``texts`` (stop words, filler words, numbers and one- or two-letter
    words out), in the order of their first use in the document."""
    words = [[w for w in _WORD.findall(normalize_text(t or ""))] for t in texts]
    df: Counter[str] = Counter()
    for ws in words:
        df.update(set(ws))
    n = max(len(texts), 1)
    rows: list[int] = []
    out: list[str] = []
    for i, ws in enumerate(words):
        tf = Counter(w for w in ws if len(w) > 2 and not w.isdigit()
                     and w not in ENGLISH_STOP_WORDS and w not in _FILLER)
        if not tf:
            continue
        score = {w: c * math.log(n / df[w]) for w, c in tf.items()}
        top = sorted(score, key=lambda w: (-score[w], w))[:terms]
        first = {w: ws.index(w) for w in top}
        rows.append(i)
        out.append(" ".join(sorted(top, key=first.__getitem__)))
    return rows, out
