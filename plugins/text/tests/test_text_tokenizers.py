"""Tokenizers round-trip and are restored from a run's assets."""

from __future__ import annotations

import json

import pytest
from text_fixtures import SENTENCES
from vaekit_text.tokenizers import (
    HuggingFaceTokenizer,
    SentencePieceTokenizer,
    WordVocabulary,
    load_tokenizer,
)


def test_word_vocabulary_round_trip_size_limit_and_unk(tmp_path):
    vocab = WordVocabulary.fit(SENTENCES, max_size=10)
    assert vocab.vocab_size == 10 and vocab.words[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert vocab.words[4] == "the"  # the most frequent word comes first
    kept = set(vocab.words[4:])
    sentence = SENTENCES[2]
    assert vocab.decode(vocab.encode(sentence)).split() == [w if w in kept else "<unk>" for w in sentence.split()]
    assert "<unk>" in vocab.decode(vocab.encode(sentence))  # the cap really dropped words
    full = WordVocabulary.fit(SENTENCES, max_size=1000)
    for sentence in SENTENCES:
        assert full.decode(full.encode(sentence)) == sentence
    assert full.encode("the zebra") == [full.index["the"], full.unk_id]
    assert full.encode("<unk> cat")[0] == full.unk_id  # PTB writes rare words as <unk>
    full.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert isinstance(again, WordVocabulary) and again.words == full.words


def test_word_vocabulary_min_freq_and_lowercase():
    vocab = WordVocabulary.fit(["The cat", "the dog", "THE cat"], max_size=100, min_freq=2, lowercase=True)
    assert vocab.words[4:] == ["the", "cat"]
    assert vocab.decode(vocab.encode("The Dog")) == "the <unk>"


def test_ptb_vocabulary_has_ptb_size(data_dir):
    from vaekit_text.data import read_sentences

    vocab = WordVocabulary.fit(read_sentences(data_dir / "ptb" / "ptb.train.txt"), max_size=20_000)
    assert vocab.vocab_size == 10_002  # 9,999 words (<unk> included) + <eos> + <pad> + <bos>


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_round_trip(tmp_path, model_type):
    corpus = [f"{s} number {i}" for i, s in enumerate(SENTENCES * 20)]
    spm = SentencePieceTokenizer.fit(corpus, vocab_size=60, model_type=model_type)
    assert (spm.pad_id, spm.unk_id, spm.bos_id, spm.eos_id) == (0, 1, 2, 3)
    assert spm.unk_id in spm.encode("zebra")  # no z in the corpus
    for sentence in SENTENCES + ["unseen words like canal"]:
        assert spm.decode(spm.encode(sentence)) == sentence
        assert not set(spm.encode(sentence)) & {spm.pad_id, spm.bos_id, spm.eos_id}
    spm.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again.encode(SENTENCES[2]) == spm.encode(SENTENCES[2]) and again.vocab_size == spm.vocab_size


def test_sentencepiece_reads_ptb_unk_as_the_unk_id(data_dir):
    """PTB writes rare words as <unk>: once that became 6 pieces (two of them unk: < and > were not in the vocab)."""
    from vaekit_text.data import read_sentences

    sentences = read_sentences(data_dir / "ptb" / "ptb.train.txt")[:3000]
    spm = SentencePieceTokenizer.fit(sentences, vocab_size=1000)
    ids = spm.encode("the <unk> company said <unk>")
    assert ids.count(spm.unk_id) == 2 and spm.decode(ids) == "the <unk> company said <unk>"
    assert spm.encode("<unk>") == [spm.unk_id] and spm.decode([spm.unk_id, spm.unk_id]) == "<unk> <unk>"
    assert "unk" not in {spm.sp.id_to_piece(i).strip("▁") for i in range(spm.vocab_size)}  # no pieces spent on it
    for sentence in sentences[:200]:
        assert spm.decode(spm.encode(sentence)) == " ".join(sentence.split())


def make_hf_tokenizer_folder(folder):
    """A BERT-like word-level tokenizer written with the tokenizers library: no download."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for s in SENTENCES for w in s.split()})
    vocab = {tok: i for i, tok in enumerate(["[UNK]", "[PAD]", "[CLS]", "[SEP]"] + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]").save_pretrained(str(folder))
    return folder


def test_hugging_face_tokenizer_from_local_folder(tmp_path):
    tok = HuggingFaceTokenizer(make_hf_tokenizer_folder(tmp_path / "bert_like"))
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (1, 2, 3, 0)  # [CLS]/[SEP] stand in for bos/eos
    for sentence in SENTENCES:
        assert tok.decode(tok.encode(sentence)) == sentence
    assert tok.encode("the zebra")[1] == tok.unk_id
    tok.save(tmp_path / "assets")
    again = load_tokenizer(tmp_path / "assets")
    assert again.encode(SENTENCES[0]) == tok.encode(SENTENCES[0]) and again.vocab_size == tok.vocab_size


def test_hugging_face_tokenizer_bad_folder(tmp_path):
    with pytest.raises(ValueError, match="tokenizer folder not found"):
        HuggingFaceTokenizer(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        HuggingFaceTokenizer(tmp_path / "empty")


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(ValueError, match="tokenizer.json: missing"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"kind": "morse"}))
    with pytest.raises(ValueError, match="unknown tokenizer kind 'morse'"):
        load_tokenizer(tmp_path)


def test_hf_tokenizer_through_build_data_and_load(tmp_path):
    from text_fixtures import tiny_model_config, write_corpus
    from vaekit_text import TextDataConfig, plugin

    import vaekit
    from vaekit.runs import build_model

    folder = make_hf_tokenizer_folder(tmp_path / "bert_like")
    paths = write_corpus(tmp_path / "corpus")
    cfg = TextDataConfig(train=str(paths["train"]), tokenizer="hf", hf_tokenizer=str(folder), max_length=12)
    bundle = plugin.build_data(cfg, seed=0, assets=tmp_path / "assets")
    assert (tmp_path / "assets" / "hf_tokenizer" / "tokenizer.json").is_file()
    model = build_model(plugin, tiny_model_config("transformer"), bundle.info, tmp_path / "assets")
    saved = vaekit.save_pretrained(model, tmp_path / "pretrained")
    loaded, _ = vaekit.load(saved)
    x = plugin.encode_text(loaded, [SENTENCES[3]])
    assert plugin.decode_text(loaded, x) == [SENTENCES[3]]
    assert x["tokens"][0, -1] == bundle.info["eos_id"] == 3


@pytest.mark.parametrize("text, words", [
    ("The moon! It rose (slowly), over 1,000 hills: at 10:30.",
     ["The", "moon", "!", "It", "rose", "(", "slowly", ")", ",", "over", "1,000", "hills", ":", "at", "10:30", "."]),
    ("Mr. Smith didn't see the U.S. Army.", ["Mr.", "Smith", "didn't", "see", "the", "U.S.", "Army", "."]),
    ('He said "no" -- then long-term silence...', ["He", "said", '"', "no", '"', "--", "then", "long-term", "silence",
                                                  "..."]),
])
def test_punctuation_split_and_its_inverse(text, words):
    vocab = WordVocabulary.fit([text], max_size=100, split="punctuation")
    assert vocab.tokens(text) == words
    assert vocab.decode(vocab.encode(text)) == text  # decodes read as text, which BLEU is scored against


def test_a_vocabulary_saved_before_word_split_keeps_whitespace_words(tmp_path):
    """A run's saved vocabulary decides how its text is split, so ids never shift under a checkpoint."""
    WordVocabulary.fit(["the moon rose"], max_size=100, split="punctuation").save(tmp_path)
    manifest = json.loads((tmp_path / "tokenizer.json").read_text())
    assert manifest["split"] == "punctuation"
    del manifest["split"]
    (tmp_path / "tokenizer.json").write_text(json.dumps(manifest))
    old = load_tokenizer(tmp_path)
    assert old.split == "whitespace" and old.encode("the moon!") == [old.index["the"], old.unk_id]
