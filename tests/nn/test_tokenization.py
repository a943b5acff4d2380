"""The one BPE trainer: the student's tokenizer (lower-cased, exact size) and benchmark's cased proxy (up to a size),
each cached only under its own corpus, size and casing."""

from __future__ import annotations

import pytest
from conftest import sample_functions

from lit_compressor.commands.benchmark import proxy_tokenizer
from lit_compressor.core.errors import UserError
from lit_compressor.nn.tokenization import train_student_tokenizer

CODE = sample_functions(40)


def test_student_tokenizer_is_lower_cased_with_exactly_its_size(tmp_path):
    tokenizer = train_student_tokenizer(CODE, 400, tmp_path)
    assert len(tokenizer) == 400 and tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tokenizer("String Name")["input_ids"] == tokenizer("string name")["input_ids"]
    assert tokenizer("a")["input_ids"][0] == 0 and tokenizer("a")["input_ids"][-1] == 2
    with pytest.raises(UserError, match="yields only"):
        train_student_tokenizer(CODE, 50_000)


def test_proxy_keeps_case_and_takes_what_the_corpus_yields(tmp_path):
    proxy = proxy_tokenizer(CODE, tmp_path)  # CodeBERT's 50,265: far more than 40 functions yield
    assert 400 < len(proxy) < 50_265
    assert proxy("String Name")["input_ids"] != proxy("string name")["input_ids"]
    # cached apart from the student's (casing) and reused as is
    [cached] = tmp_path.glob("*-v50265/tokenizer.json")
    written = cached.stat().st_mtime_ns
    assert proxy_tokenizer(CODE, tmp_path).get_vocab() == proxy.get_vocab() and cached.stat().st_mtime_ns == written
    cased = train_student_tokenizer(CODE, 400, tmp_path, lowercase=False)
    lower = train_student_tokenizer(CODE, 400, tmp_path)
    assert cased("String")["input_ids"] != lower("String")["input_ids"]
    assert len(list(tmp_path.iterdir())) == 3
    # a short cached vocabulary still refuses a caller that needs the exact size
    with pytest.raises(UserError, match="yields only"):
        train_student_tokenizer(CODE, 50_265, tmp_path, lowercase=False)
