from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow.fs as pafs
import pytest

from tarndb.search import BM25Index, BM25Params, Tokenizer, TokenizerConfig, contains
from tarndb.search._text import exact_text_match

CORPUS = [
    "Fix the authentication bug in the login service",
    "Authentication tokens expire after one hour",
    "Refactor database connection pooling",
    "The login page shows error E1234 when the token is invalid",
    "Bugs in bug trackers: fixing bugs fast",
    "東京都の天気予報を確認する",
    "京都の観光スポット",
    "한국어 검색 엔진 테스트",
    "ＡＢＣ full-width letters and Ｃａｆé",
    "",
]


def _oracle_scores(texts: list[str], query: str, tok: Tokenizer, k1: float = 0.9,
                   b: float = 0.4) -> dict[int, float]:
    """Textbook BM25 written independently of the index."""
    docs = [tok(t) for t in texts]
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    out: dict[int, float] = {}
    q = tok(query)
    for i, d in enumerate(docs):
        tf = Counter(d)
        s = 0.0
        for term in q:
            df = sum(1 for dd in docs if term in dd)
            if tf[term] == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            s += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(d) / avgdl))
        if s > 0:
            out[i] = s
    return out


def test_tokenizer_lowercases_nfkc_and_stop_words() -> None:
    tok = Tokenizer(TokenizerConfig(stemmer=None))
    assert tok("The Quick, BROWN fox!") == ["quick", "brown", "fox"]
    assert tok("ＡＢＣ") == ["abc"]  # NFKC folds full-width letters
    assert Tokenizer(TokenizerConfig(stopwords=None))("the fox") == ["the", "fox"]
    assert tok("error_code E1234") == ["error_code", "e1234"]


def test_tokenizer_cjk_bigrams() -> None:
    tok = Tokenizer()
    assert tok("東京都") == ["東京", "京都"]
    assert tok("京") == ["京"]
    assert tok("日本語abc") == ["日本", "本語", "abc"]
    assert tok("한국어 검색") == ["한국", "국어", "검색"]
    assert tok("カタカナ") == ["カタ", "タカ", "カナ"]


def test_snowball_stemming_is_the_default() -> None:
    tok = Tokenizer()
    assert tok("fixing bugs running") == ["fix", "bug", "run"]
    assert Tokenizer(TokenizerConfig(stemmer=None))("bugs") == ["bugs"]
    with pytest.raises(ValueError, match="Snowball"):
        Tokenizer(TokenizerConfig(stemmer="klingon"))


def test_bm25_scores_match_textbook_oracle() -> None:
    idx = BM25Index()
    idx.add(range(len(CORPUS)), CORPUS)
    for query in ["authentication bug", "login token", "bug bug fix", "京都", "nothing"]:
        want = _oracle_scores(CORPUS, query, idx.tokenize)
        keys, scores = idx.search(query, 100)
        assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(
            want, rel=1e-5)
        # Best first, ties by key.
        assert list(keys) == sorted(want, key=lambda i: (-want[i], i))


def test_bm25_cjk_is_searchable() -> None:
    idx = BM25Index()
    idx.add(range(len(CORPUS)), CORPUS)
    assert idx.search("京都", 3)[0].tolist()[:2] == [6, 5] or set(
        idx.search("京都", 3)[0].tolist()) >= {5, 6}
    assert idx.search("天気", 3)[0].tolist() == [5]
    assert idx.search("검색", 3)[0].tolist() == [7]
    assert idx.search("cafe", 3)[0].tolist() == []  # no accent folding, by design
    assert idx.search("café", 3)[0].tolist() == [8]


def test_bm25_allowed_is_a_prefilter_with_global_stats() -> None:
    idx = BM25Index()
    idx.add(range(len(CORPUS)), CORPUS)
    all_keys, all_scores = idx.search("authentication login", 10)
    keys, scores = idx.search("authentication login", 10, allowed=[1, 3, 9])
    assert set(keys.tolist()) <= {1, 3}
    full = dict(zip(all_keys.tolist(), all_scores.tolist(), strict=True))
    for key, s in zip(keys.tolist(), scores.tolist(), strict=True):
        assert s == pytest.approx(full[key])


def test_incremental_add_delete_update_equals_rebuild() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    texts = {i: " ".join(rng.choice(words, int(rng.integers(1, 12)))) for i in range(300)}
    idx = BM25Index()
    for start in range(0, 300, 50):
        idx.add(range(start, start + 50), [texts[i] for i in range(start, start + 50)])
    dead = list(range(0, 300, 7))
    assert idx.delete(dead) == len(dead)
    assert idx.delete([10_000]) == 0
    for i in dead:
        texts.pop(i)
    for i in range(1, 300, 11):  # updates
        if i in texts:
            texts[i] = "w1 w2 w3 updated"
            idx.add([i], [texts[i]])
    ref = BM25Index()
    ref.add(list(texts), list(texts.values()))
    assert len(idx) == len(ref) == len(texts)
    for q in ["w1 w2", "w5", "updated w3", "w39 w0 w17"]:
        k1, s1 = idx.search(q, 25)
        k2, s2 = ref.search(q, 25)
        assert k1.tolist() == k2.tolist()
        np.testing.assert_allclose(s1, s2, rtol=1e-5)
    idx.compact()
    assert len(idx.segments) == 1
    k3, s3 = idx.search("w1 w2", 25)
    assert k3.tolist() == ref.search("w1 w2", 25)[0].tolist()


@pytest.mark.parametrize("first_batch,dense_min,dense_work", [
    (1, 1, 0), (8, 1, 0), (64, 65536, 0), (2048, 1, 0), (2048, 65536, 20_000)])
def test_pruned_search_equals_exhaustive_top_k(monkeypatch: pytest.MonkeyPatch,
                                               first_batch: int, dense_min: int,
                                               dense_work: int) -> None:
    """search() skips rows (threshold algorithm over impact groups, dense fallback); it must
    return exactly what scoring every matching row returns: same keys, order, scores.
    ``dense_work`` 0 keeps these small indexes on the pruned path; 20,000 (the default)
    sends most of them to the one-pass accumulator."""
    import tarndb.search._bm25 as bm25_mod

    monkeypatch.setattr(bm25_mod, "_FIRST_BATCH", first_batch)
    monkeypatch.setattr(bm25_mod, "_DENSE_TF_MIN_DOCS", dense_min)
    monkeypatch.setattr(bm25_mod, "_DENSE_MAX_WORK", dense_work)
    rng = np.random.default_rng(first_batch)
    for trial in range(12):
        n = int(rng.integers(50, 3000))
        vocab = int(rng.integers(5, 200))
        ranks = np.minimum(rng.zipf(1.2, size=n * 14), vocab) - 1
        texts, pos = [], 0
        for ln in rng.integers(0, 14, n).tolist():
            texts.append(" ".join(f"w{r}" for r in ranks[pos:pos + ln].tolist()))
            pos += ln
        keys = rng.permutation(n * 2)[:n]
        idx = BM25Index(BM25Params(k1=float(rng.choice([0.0, 0.9, 1.5])),
                                   b=float(rng.choice([0.0, 0.4, 1.0]))))
        step = max(1, n // int(rng.integers(1, 4)))
        for s in range(0, n, step):  # several segments
            idx.add(keys[s:s + step], texts[s:s + step])
        if trial % 2:
            idx.delete(rng.choice(keys, n // 4))
        for qi in range(20):
            # Short queries, and every third one long (8-20 words: MaxScore skips terms).
            size = int(rng.integers(1, 5)) if qi % 3 else int(rng.integers(8, 21))
            words = np.minimum(rng.zipf(1.2, size=size), vocab + 2) - 1
            q = " ".join(f"w{int(r)}" for r in words)
            k = int(rng.integers(1, 120))
            allowed = None if qi % 2 else rng.choice(keys, max(1, n // int(rng.integers(1, 30))))
            all_k, all_s = idx.score_all(q)
            if allowed is not None:
                ok = np.isin(all_k, allowed)
                all_k, all_s = all_k[ok], all_s[ok]
            want = np.lexsort((all_k, -all_s.astype(np.float64)))[:k]
            got_k, got_s = idx.search(q, k, allowed)
            assert got_k.tolist() == all_k[want].tolist(), (trial, q, k)
            assert np.array_equal(got_s, all_s[want])
            some = keys[:40]
            ref = dict(zip(*idx.score_all(q), strict=True))
            np.testing.assert_array_equal(
                idx.score_rows(q, some),
                np.array([ref.get(int(x), 0.0) for x in some], np.float32))


def test_save_load_roundtrip_local_and_mock_fs(tmp_path: pytest.TempPathFactory) -> None:
    idx = BM25Index(BM25Params(k1=1.2, b=0.75), TokenizerConfig(stemmer="english"))
    idx.add(range(len(CORPUS)), CORPUS)
    idx.delete([1])
    uri = f"{tmp_path}/bm25"
    idx.save(uri)
    idx.add([100], ["authentication again"])
    idx.delete([0])
    idx.save(uri)
    back = BM25Index.load(uri)
    assert back.params == BM25Params(k1=1.2, b=0.75)
    assert back.tokenizer_config.stemmer == "english"
    for q in ["authentication bugs", "京都", "token"]:
        assert back.search(q, 10)[0].tolist() == idx.search(q, 10)[0].tolist()
    assert 0 not in back.row_keys().tolist() and 1 not in back.row_keys().tolist()

    mock = pafs._MockFileSystem()
    idx.save("idx/bm25", filesystem=mock)
    back2 = BM25Index.load("idx/bm25", filesystem=mock)
    assert back2.search("token", 5)[0].tolist() == idx.search("token", 5)[0].tolist()


def test_contains_and_exact_text() -> None:
    assert contains("Fix the AUTH bug", "auth bug") is True
    assert contains("ＡＢＣ", "abc") is True
    assert contains("abc", "xyz") is False
    assert contains(None, "x") is None
    assert exact_text_match("Ｃafé", "Cafe\u0301") is True
    assert exact_text_match("Cafe", "cafe") is False
