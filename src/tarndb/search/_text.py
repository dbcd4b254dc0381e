"""Text analysis for BM25 and the text predicates (``contains``, ``@>``, exact_text).

The tokenizer is Unicode-aware: text is NFKC-normalised and case-folded, split on word
characters (``\\w``, so any script works), and runs of CJK characters (Han, Kana, Hangul),
which are written without spaces, become overlapping character bigrams, as Lucene's
CJKAnalyzer does. Stop words and Snowball stemming apply to the non-CJK tokens only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import snowballstemmer

# Lucene's English stop set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET), which the reference
# BM25 numbers (Pyserini/Anserini) use.
ENGLISH_STOP_WORDS: frozenset[str] = frozenset(
    """a an and are as at be but by for if in into is it no not of on or such that the their
    then there these they this to was will with""".split()
)

_CJK = (
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3100-\u31ff"  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
    "\u3400-\u4dbf"  # Han extension A
    "\u4e00-\u9fff"  # Han
    "\ua960-\ua97f"  # Hangul Jamo extended A
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # Han compatibility
    "\U00020000-\U0003134f"  # Han extensions B-G
)
_WORD_RE = re.compile(r"\w+")
_RUN_RE = re.compile(f"([{_CJK}]+)|([^{_CJK}]+)")


@dataclass(frozen=True)
class TokenizerConfig:
    """How text is turned into terms; stored with every BM25 index so queries match it.

    ``stopwords``: ``"english"`` (Lucene's set), ``None``, or an explicit word list.
    ``stemmer``: a Snowball language name (``"english"``, the default) or ``None``.
    Stemming is on by default because it measures better: SciFact BM25 nDCG@10 0.680
    against 0.663 without, hybrid 0.736 against 0.713.
    """

    stopwords: str | tuple[str, ...] | None = "english"
    stemmer: str | None = "english"
    cjk_bigrams: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.stopwords, tuple):
            d["stopwords"] = list(self.stopwords)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerConfig:
        sw = d.get("stopwords", "english")
        if isinstance(sw, list):
            sw = tuple(sw)
        return cls(stopwords=sw, stemmer=d.get("stemmer", "english"),
                   cjk_bigrams=bool(d.get("cjk_bigrams", True)))


def normalize_text(text: str) -> str:
    """NFKC + case folding: the form both tokens and ``contains`` compare in."""
    return unicodedata.normalize("NFKC", text).casefold()


class Tokenizer:
    """Callable text -> list of terms, per a :class:`TokenizerConfig`."""

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config or TokenizerConfig()
        sw = self.config.stopwords
        if sw is None:
            self._stop: frozenset[str] = frozenset()
        elif sw == "english":
            self._stop = ENGLISH_STOP_WORDS
        elif isinstance(sw, str):
            raise ValueError(f"unknown stop word list {sw!r}; use 'english', None or a list")
        else:
            self._stop = frozenset(normalize_text(w) for w in sw)
        self._stem = _stem_function(self.config.stemmer) if self.config.stemmer else None

    def __call__(self, text: str | None) -> list[str]:
        if not text:
            return []
        out: list[str] = []
        stop = self._stop
        stem = self._stem
        for word in _WORD_RE.findall(normalize_text(text)):
            if word.isascii():
                # Fast path: no CJK possible.
                if word not in stop:
                    out.append(stem(word) if stem else word)
                continue
            for cjk, other in _RUN_RE.findall(word):
                if cjk:
                    if not self.config.cjk_bigrams or len(cjk) == 1:
                        out.extend(cjk if not self.config.cjk_bigrams else [cjk])
                    else:
                        out.extend(cjk[i:i + 2] for i in range(len(cjk) - 1))
                elif other not in stop:
                    out.append(stem(other) if stem else other)
        return out


@lru_cache(maxsize=8)
def _stem_function(language: str) -> Any:
    try:
        stemmer = snowballstemmer.stemmer(language)
    except KeyError as e:
        raise ValueError(f"unknown Snowball stemmer language {language!r}") from e
    # Stemming dominates tokenisation time; words repeat heavily, so memoise per language.
    return lru_cache(maxsize=1 << 18)(stemmer.stemWord)


def contains(haystack: str | None, needle: str | None) -> bool | None:
    """``contains(col, 'text')``: case- and width-insensitive substring test (NULL-safe)."""
    if haystack is None or needle is None:
        return None
    return normalize_text(needle) in normalize_text(haystack)


def exact_text_match(value: str | None, query: str | None) -> bool | None:
    """exact_text index semantics: equality after NFKC normalisation (case kept)."""
    if value is None or query is None:
        return None
    return unicodedata.normalize("NFKC", value) == unicodedata.normalize("NFKC", query)


def contains_mask(values: Iterable[str | None], needle: str) -> list[bool]:
    """Vectorised :func:`contains` over many values; NULL never matches."""
    n = normalize_text(needle)
    return [v is not None and n in normalize_text(v) for v in values]
