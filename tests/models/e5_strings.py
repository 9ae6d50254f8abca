"""Test strings for the E5 tokenizer: zh, en, mixed, and the awkward cases the brief lists."""

from __future__ import annotations

import random

_BASE = [
    "",
    " ",
    "  ",
    "hello",
    "Hello world",
    "hello  world",
    "  leading",
    "trailing  ",
    " both ",
    "tab\there",
    "new\nline",
    "crlf\r\nline",
    "a\x01b\x7fc",
    "\x00after nul",
    "nbsp\u00a0here",
    "ＦＵＬＬ ｗｉｄｔｈ １２３",
    "ｶﾞｷﾞ",
    "e\u0301 cafe\u0301",
    "Ａ\u0301",
    "\u00a0\u0301",
    "naïve résumé",
    "<s>",
    "<s> hello </s>",
    "<pad><unk><mask>",
    "literal <unk> token",
    "▁already▁metaspace",
    "emoji 😀👍🏽 👨‍👩‍👧",
    "flags 🇨🇳🇺🇸",
    "rare 𠀀𠀁 chars",
    "𪚥𪚥",
    "龘靐齉",
    "你好，世界！",
    "机器学习是人工智能的一个分支。",
    "请问今天天气怎么样？",
    "中文English混合text测试",
    "北京是中国的首都",
    "query: 如何申请年假",
    "passage: 员工每年享有十天带薪年假。",
    "The quick brown fox jumps over the lazy dog.",
    "How many vacation days do employees get?",
    "Ⅻ ① ㍿ ﬁ ﬀ ™ ½",
    "Ｈｅｌｌｏ，Ｗｏｒｌｄ！",
    "x\u200by\u200cz\u200dw",
    "\u3000全角空格\u3000",
    "Ελληνικά και Русский язык",
    "עברית وعربي",
    "हिन्दी क़ानून",
    "한국어 ㄱㄴㄷ",
    "日本語のテキスト",
    "Tiếng Việt có dấu",
    "ǅ ĳ ſ ŉ",
    "a" * 300,
    "测" * 200,
    "1234567890 3.14159 1e-12",
    "C:\\path\\to\\file.txt",
    "https://example.com/a?b=c",
    "email@example.com",
    "#hashtag @mention",
]
_ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()")
    + list(
        "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴"
    )
    + list("ＡＢＣａｂｃ１２３，。！？\u3000\t\n\u0301\u0308😀🙂𠀀𪚥")
)


def e5_test_strings(count: int = 300, seed: int = 17) -> list[str]:
    """``count`` strings: the fixed cases above, then random mixes of the alphabet."""
    rng = random.Random(seed)
    strings = list(_BASE)
    while len(strings) < count:
        length = rng.randint(1, 60)
        strings.append("".join(rng.choice(_ALPHABET) for _ in range(length)))
    return strings[:count]
