"""Cleaning: Unicode and Chinese punctuation, control characters, whitespace, PII, length limits."""

from __future__ import annotations

from collections import Counter

import pytest

from finetune.data.clean import (
    CleanConfig,
    TokenCounter,
    clean_examples,
    clean_text,
    estimate_tokens,
    luhn_valid,
    mask_pii,
    normalize_unicode,
    valid_resident_id,
)
from finetune.data.load import Example


def chat(user: str, reply: str, source: str = "f:1") -> Example:
    return Example(
        [{"role": "user", "content": user}, {"role": "assistant", "content": reply}], source=source
    )


# ---- text ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "ABC123"),  # full-width letters and digits become ASCII
        ("你好，世界！", "你好，世界！"),  # Chinese punctuation stays full-width next to CJK
        ("Hello，world！", "Hello,world!"),  # ... but not between Latin words
        ("价格（含税）：１００元", "价格（含税）：100元"),
        ("ﬁne\u3000day", "fine day"),  # ligature, ideographic space
        ("员工。Staff", "员工。Staff"),  # the ideographic full stop is left alone
    ],
)
def test_unicode_normalisation_keeps_chinese_punctuation(raw: str, expected: str) -> None:
    assert normalize_unicode(raw) == expected


def test_control_characters_and_whitespace() -> None:
    raw = "\ufeffHello\u200b  world\x07\r\n\r\n\r\n\r\nsecond\tline   \n  third\x00"
    assert clean_text(raw) == "Hello world\n\nsecond line\n third"


# ---- PII ------------------------------------------------------------------------------------------
VALID_ID = "11010519491231002X"  # the published sample number: checksum X, born 1949-12-31
BAD_CHECKSUM_ID = "110105194912310021"
BAD_DATE_ID = "110105194913310023"


def test_resident_id_checksum_and_birth_date() -> None:
    assert valid_resident_id(VALID_ID)
    assert valid_resident_id(VALID_ID.lower())
    assert not valid_resident_id(BAD_CHECKSUM_ID)
    assert not valid_resident_id(BAD_DATE_ID)


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("6011000990139424")
    assert not luhn_valid("4111111111111112")


def test_mask_pii_masks_valid_numbers_only_and_counts() -> None:
    counts: Counter[str] = Counter()
    text = (
        f"联系电话13812345678，备用 +86 139-1234-5678，邮箱 zhang.san@example.com.cn，身份证{VALID_ID}，"
        f"卡号 4111 1111 1111 1111 和 6011000990139424。"
        f"流水号{BAD_CHECKSUM_ID}，订单 4111111111111112，座机 12345678901，编号 1381234567890。"
    )
    masked = mask_pii(text, counts)
    assert masked == (
        "联系电话[PHONE]，备用 [PHONE]，邮箱 [EMAIL]，身份证[ID]，卡号 [CARD] 和 [CARD]。"
        f"流水号{BAD_CHECKSUM_ID}，订单 4111111111111112，座机 12345678901，编号 1381234567890。"
    )
    assert counts == Counter({"PHONE": 2, "CARD": 2, "EMAIL": 1, "ID": 1})


def test_email_holding_a_phone_number_is_one_email() -> None:
    counts: Counter[str] = Counter()
    assert mask_pii("mail 13812345678@163.com now", counts) == "mail [EMAIL] now"
    assert counts == Counter({"EMAIL": 1})


# ---- length and the cleaning step -------------------------------------------------------------
def test_estimate_tokens() -> None:
    assert estimate_tokens("年假十天") == 4  # one per CJK character
    assert estimate_tokens("abcdefgh") == 2  # one per four other characters
    assert estimate_tokens("年假 is ten") == 2 + 2  # 2 CJK + ceil(7 / 4)


def test_clean_examples_drops_and_counts_with_reasons() -> None:
    examples = [
        chat("What is the refund window for physical products?", "Thirty days after delivery.", "f:1"),
        chat("   \u200b ", "Orphan answer", "f:2"),  # empty prompt after cleaning
        chat("Hi", "", "f:3"),  # empty reply
        chat("Hi", "ok", "f:4"),  # too short
        chat("Long " * 400, "x" * 50, "f:5"),  # too long
        chat("Ｆｕｌｌ\u3000width question about returns?", "Yes，within 30 days.", "f:6"),
    ]
    result = clean_examples(examples, CleanConfig(min_tokens=6, max_tokens=200), TokenCounter())
    assert [e.source for e in result.kept] == ["f:1", "f:6"]
    assert result.dropped == Counter({"empty": 2, "too_short": 1, "too_long": 1})
    assert result.samples["too_long"] == "f:5"
    assert result.kept[1].prompt == "Full width question about returns?"
    assert result.kept[1].response == "Yes,within 30 days."
    assert result.changed["unicode"] == 2 and result.changed["control_chars"] == 1
    first = result.kept[0]
    assert (
        result.lengths[0] == estimate_tokens(first.prompt) + estimate_tokens(first.response) + 8
    )  # 4 a message


def test_clean_examples_masks_pii_when_asked() -> None:
    examples = [chat("My phone is 13812345678, please call me back.", "We will call [PHONE] today.")]
    plain = clean_examples(examples, CleanConfig(), TokenCounter())
    assert "13812345678" in plain.kept[0].prompt and not plain.pii
    masked = clean_examples(examples, CleanConfig(mask_pii=True), TokenCounter())
    assert masked.kept[0].prompt == "My phone is [PHONE], please call me back."
    assert masked.pii == Counter({"PHONE": 1}) and masked.changed["pii"] == 1


class _CharTokenizer:
    """A stand-in tokenizer: one token per character, and a chat template that adds 3 per message."""

    chat_template = "yes"

    def __call__(self, text: str | list[str], add_special_tokens: bool = False) -> dict[str, list]:
        if isinstance(text, list):
            return {"input_ids": [list(t) for t in text]}
        return {"input_ids": list(text)}

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = True) -> list[str]:
        return [ch for m in messages for ch in "<|>" + m["content"]]


def test_token_counter_uses_the_tokenizer_and_its_chat_template() -> None:
    counter = TokenCounter(_CharTokenizer(), name="char")
    assert counter.count(chat("abcd", "ef")) == 4 + 2 + 2 * 3
    assert counter.content(chat("abcd", "ef")) == 6
    assert counter.count(Example(text="hello")) == 5
    counter.tokenizer.chat_template = None
    assert counter.count(chat("abcd", "ef")) == 6 + 2 * 4


def test_clean_config_validates() -> None:
    with pytest.raises(ValueError, match="max_tokens must be > min_tokens"):
        CleanConfig(min_tokens=10, max_tokens=10)
