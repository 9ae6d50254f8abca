"""Build ``general_instructions.jsonl``: general instruction/answer pairs in English and Chinese.

    python datasets/general/build.py          # rewrites general_instructions.jsonl beside this file

Fine-tuning on domain data alone makes a model forget general skills; ``ladder finetune
prepare`` mixes this set in (``--ratio``). Every answer is computed here (arithmetic,
conversions, dates, sorting, string rewrites) or taken from a small table of stable,
uncontested facts (capitals, antonyms), because training on it must not teach a wrong
fact. The output is deterministic: the same script writes the same file.

Alpaca format, one object per line: ``instruction``, ``input``, ``output``, ``tags``
(the task family and ``lang:en`` / ``lang:zh``).
"""

from __future__ import annotations

import calendar
import datetime
import json
import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path

SEED = 20240601
OUT = Path(__file__).resolve().parent / "general_instructions.jsonl"
Row = dict[str, object]

WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAYS_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")

# Country capitals that are neither contested nor recently moved (no Bolivia, Netherlands,
# Côte d'Ivoire, Sri Lanka, Kazakhstan, Indonesia, South Africa, Israel).
CAPITALS = (
    ("France", "Paris", "法国", "巴黎"), ("Germany", "Berlin", "德国", "柏林"),
    ("Italy", "Rome", "意大利", "罗马"), ("Spain", "Madrid", "西班牙", "马德里"),
    ("Portugal", "Lisbon", "葡萄牙", "里斯本"), ("the United Kingdom", "London", "英国", "伦敦"),
    ("Ireland", "Dublin", "爱尔兰", "都柏林"), ("Russia", "Moscow", "俄罗斯", "莫斯科"),
    ("Egypt", "Cairo", "埃及", "开罗"), ("Kenya", "Nairobi", "肯尼亚", "内罗毕"),
    ("Argentina", "Buenos Aires", "阿根廷", "布宜诺斯艾利斯"), ("Mexico", "Mexico City", "墨西哥", "墨西哥城"),
    ("Peru", "Lima", "秘鲁", "利马"), ("Chile", "Santiago", "智利", "圣地亚哥"),
    ("Colombia", "Bogotá", "哥伦比亚", "波哥大"), ("Thailand", "Bangkok", "泰国", "曼谷"),
    ("Vietnam", "Hanoi", "越南", "河内"), ("the Philippines", "Manila", "菲律宾", "马尼拉"),
    ("Norway", "Oslo", "挪威", "奥斯陆"), ("Sweden", "Stockholm", "瑞典", "斯德哥尔摩"),
    ("Finland", "Helsinki", "芬兰", "赫尔辛基"), ("Denmark", "Copenhagen", "丹麦", "哥本哈根"),
    ("Poland", "Warsaw", "波兰", "华沙"), ("Greece", "Athens", "希腊", "雅典"),
    ("Austria", "Vienna", "奥地利", "维也纳"), ("Hungary", "Budapest", "匈牙利", "布达佩斯"),
    ("the Czech Republic", "Prague", "捷克", "布拉格"), ("Canada", "Ottawa", "加拿大", "渥太华"),
    ("Australia", "Canberra", "澳大利亚", "堪培拉"), ("New Zealand", "Wellington", "新西兰", "惠灵顿"),
    ("Japan", "Tokyo", "日本", "东京"), ("South Korea", "Seoul", "韩国", "首尔"),
    ("India", "New Delhi", "印度", "新德里"), ("Pakistan", "Islamabad", "巴基斯坦", "伊斯兰堡"),
    ("Iran", "Tehran", "伊朗", "德黑兰"), ("Iraq", "Baghdad", "伊拉克", "巴格达"),
    ("Saudi Arabia", "Riyadh", "沙特阿拉伯", "利雅得"), ("Turkey", "Ankara", "土耳其", "安卡拉"),
    ("Ethiopia", "Addis Ababa", "埃塞俄比亚", "亚的斯亚贝巴"), ("Morocco", "Rabat", "摩洛哥", "拉巴特"),
    ("Cuba", "Havana", "古巴", "哈瓦那"), ("Belgium", "Brussels", "比利时", "布鲁塞尔"),
    ("Mongolia", "Ulaanbaatar", "蒙古国", "乌兰巴托"), ("Nepal", "Kathmandu", "尼泊尔", "加德满都"),
    ("Brazil", "Brasília", "巴西", "巴西利亚"), ("Nigeria", "Abuja", "尼日利亚", "阿布贾"),
)  # fmt: skip
PROVINCE_CAPITALS = (
    ("浙江", "杭州"), ("广东", "广州"), ("江苏", "南京"), ("四川", "成都"), ("湖北", "武汉"),
    ("湖南", "长沙"), ("山东", "济南"), ("河南", "郑州"), ("河北", "石家庄"), ("福建", "福州"),
    ("陕西", "西安"), ("辽宁", "沈阳"), ("吉林", "长春"), ("黑龙江", "哈尔滨"), ("云南", "昆明"),
    ("贵州", "贵阳"), ("江西", "南昌"), ("安徽", "合肥"), ("山西", "太原"), ("甘肃", "兰州"),
    ("青海", "西宁"), ("海南", "海口"),
)  # fmt: skip
ANTONYMS_EN = (
    ("hot", "cold"), ("big", "small"), ("fast", "slow"), ("early", "late"), ("full", "empty"),
    ("rich", "poor"), ("strong", "weak"), ("wide", "narrow"), ("deep", "shallow"), ("happy", "sad"),
    ("safe", "dangerous"), ("clean", "dirty"), ("cheap", "expensive"), ("wet", "dry"), ("loud", "quiet"),
    ("visible", "invisible"), ("possible", "impossible"), ("honest", "dishonest"), ("increase", "decrease"),
    ("arrive", "depart"), ("accept", "reject"), ("buy", "sell"), ("win", "lose"), ("push", "pull"),
    ("remember", "forget"), ("above", "below"), ("inside", "outside"), ("before", "after"),
    ("true", "false"), ("maximum", "minimum"),
)  # fmt: skip
ANTONYMS_ZH = (
    ("大", "小"), ("高", "低"), ("快", "慢"), ("冷", "热"), ("多", "少"), ("轻", "重"), ("黑", "白"),
    ("上", "下"), ("前", "后"), ("左", "右"), ("胜利", "失败"), ("安全", "危险"), ("简单", "复杂"),
    ("增加", "减少"), ("进口", "出口"), ("干净", "肮脏"), ("真", "假"), ("买", "卖"), ("进", "出"),
    ("开始", "结束"), ("出发", "到达"), ("美丽", "丑陋"), ("宽", "窄"), ("深", "浅"), ("富有", "贫穷"),
)  # fmt: skip
SENTENCES_EN = (
    "the library opens at nine in the morning", "please close the window before you leave",
    "our team finished the project ahead of schedule", "the train to the airport leaves every ten minutes",
    "fresh bread is delivered to the shop each day", "she planted three apple trees in the garden",
    "the meeting has been moved to thursday afternoon", "water boils faster at high altitude",
    "he keeps his notes in a blue notebook", "the museum is free on the first sunday of the month",
    "children learn new words quickly", "the bridge was painted bright red last summer",
)  # fmt: skip
SENTENCES_ZH = (
    "我明天早上八点去图书馆看书", "我把旧衣服捐给了社区", "我每天骑自行车上班", "我在周末学习做饭",
    "我昨天给奶奶打了电话", "我喜欢在公园里散步", "我下个月要去海边旅行", "我把报告发给了经理",
)  # fmt: skip
WORDS_EN = ("apple", "river", "candle", "mountain", "piano", "garden", "ladder", "violet", "orbit", "kettle",
            "harbor", "falcon", "meadow", "quartz", "zephyr", "bottle", "jungle", "lantern", "marble", "nectar")  # fmt: skip


def row(instruction: str, output: str, tags: list[str], input_text: str = "") -> Row:
    return {"instruction": instruction, "input": input_text, "output": output, "tags": tags}


def arithmetic(rng: random.Random) -> Iterator[Row]:
    for _ in range(420):
        a, b = rng.randint(12, 999), rng.randint(12, 999)
        op = rng.choice("+-*/")
        if op == "/":
            b = rng.randint(2, 40)
            a = b * rng.randint(2, 60)
        result = {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]
        shown = {"+": "+", "-": "-", "*": "×", "/": "÷"}[op]
        if rng.random() < 0.5:
            ask = rng.choice(("What is {a} {o} {b}?", "Calculate {a} {o} {b}.", "Compute {a} {o} {b}."))
            yield row(ask.format(a=a, o=shown, b=b), f"{a} {shown} {b} = {result}", ["arithmetic", "lang:en"])
        else:
            ask = rng.choice(
                ("计算 {a} {o} {b} 等于多少？", "{a} {o} {b} 的结果是多少？", "请算出 {a} {o} {b}。")
            )
            yield row(
                ask.format(a=a, o=shown, b=b), f"{a} {shown} {b} = {result}。", ["arithmetic", "lang:zh"]
            )


def number_facts(rng: random.Random) -> Iterator[Row]:
    for _ in range(220):
        n = rng.randint(20, 999)
        prime = n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))
        kind = rng.choice(("prime", "even", "gcd"))
        if kind == "prime":
            en = f"Yes, {n} is a prime number." if prime else f"No, {n} is not a prime number."
            smallest = next((d for d in range(2, n) if n % d == 0), n)
            if not prime:
                en += f" It is divisible by {smallest}."
            yield row(f"Is {n} a prime number?", en, ["number_facts", "lang:en"])
        elif kind == "even":
            zh = f"{n} 是{'偶数' if n % 2 == 0 else '奇数'}。"
            yield row(f"{n} 是奇数还是偶数？", zh, ["number_facts", "lang:zh"])
        else:
            m = rng.randint(20, 999)
            g = math.gcd(n, m)
            yield row(f"What is the greatest common divisor of {n} and {m}?",
                      f"The greatest common divisor of {n} and {m} is {g}.", ["number_facts", "lang:en"])  # fmt: skip


def conversions(rng: random.Random) -> Iterator[Row]:
    for _ in range(360):
        kind = rng.randrange(7)
        if kind == 0:
            km = rng.randint(2, 900)
            yield row(f"How many meters are in {km} kilometers?", f"{km} kilometers is {km * 1000} meters.",
                      ["unit_conversion", "lang:en"])  # fmt: skip
        elif kind == 1:
            kg = rng.randint(2, 500)
            yield row(
                f"{kg} 千克等于多少克？", f"{kg} 千克等于 {kg * 1000} 克。", ["unit_conversion", "lang:zh"]
            )
        elif kind == 2:
            hours = rng.randint(2, 200)
            yield row(f"How many minutes are in {hours} hours?", f"{hours} hours is {hours * 60} minutes.",
                      ["unit_conversion", "lang:en"])  # fmt: skip
        elif kind == 3:
            c = 5 * rng.randint(-8, 60)
            f = c * 9 // 5 + 32  # exact: c is a multiple of 5
            yield row(f"Convert {c} degrees Celsius to Fahrenheit.", f"{c} °C is {f} °F (F = C × 9/5 + 32).",
                      ["unit_conversion", "lang:en"])  # fmt: skip
        elif kind == 4:
            liters = rng.randint(2, 400)
            yield row(f"{liters} 升等于多少毫升？", f"{liters} 升等于 {liters * 1000} 毫升。",
                      ["unit_conversion", "lang:zh"])  # fmt: skip
        elif kind == 5:
            inches = rng.randint(2, 300)
            cm = f"{inches * 254 / 100:g}"  # 1 inch = 2.54 cm exactly
            yield row(f"How many centimeters are {inches} inches?", f"{inches} inches is {cm} centimeters.",
                      ["unit_conversion", "lang:en"])  # fmt: skip
        else:
            minutes = rng.randint(2, 48) * 60 + rng.choice((0, 15, 30, 45))
            h, m = divmod(minutes, 60)
            answer = f"{minutes} 分钟等于 {h} 小时" + (f" {m} 分钟。" if m else "。")
            yield row(f"{minutes} 分钟是几小时几分钟？", answer, ["unit_conversion", "lang:zh"])


def capitals(rng: random.Random) -> Iterator[Row]:
    for country, capital, country_zh, capital_zh in CAPITALS:
        ask = rng.choice(
            (
                "What is the capital of {c}?",
                "Name the capital city of {c}.",
                "Which city is the capital of {c}?",
            )
        )
        yield row(ask.format(c=country), f"The capital of {country} is {capital}.", ["capitals", "lang:en"])
        yield row(
            f"{country_zh}的首都是哪座城市？", f"{country_zh}的首都是{capital_zh}。", ["capitals", "lang:zh"]
        )
    for province, city in PROVINCE_CAPITALS:
        yield row(f"{province}省的省会是哪里？", f"{province}省的省会是{city}。", ["capitals", "lang:zh"])


def antonyms(rng: random.Random) -> Iterator[Row]:
    for word, opposite in ANTONYMS_EN:
        for first, second in ((word, opposite), (opposite, word)):
            ask = rng.choice(('What is the opposite of "{w}"?', 'Give an antonym of "{w}".'))
            yield row(
                ask.format(w=first), f'The opposite of "{first}" is "{second}".', ["antonyms", "lang:en"]
            )
    for word, opposite in ANTONYMS_ZH:
        for first, second in ((word, opposite), (opposite, word)):
            yield row(
                f"“{first}”的反义词是什么？", f"“{first}”的反义词是“{second}”。", ["antonyms", "lang:zh"]
            )


def rewriting(rng: random.Random) -> Iterator[Row]:
    for sentence in SENTENCES_EN:
        capitalised = sentence[0].upper() + sentence[1:] + "."
        yield row("Rewrite the sentence with a capital first letter and a full stop.", capitalised,
                  ["rewriting", "lang:en"], sentence)  # fmt: skip
        yield row("Rewrite the sentence in upper case.", sentence.upper(), ["rewriting", "lang:en"], sentence)
        yield row("How many words are in this sentence?", f"The sentence has {len(sentence.split())} words.",
                  ["rewriting", "lang:en"], sentence)  # fmt: skip
        title = " ".join(w.capitalize() for w in sentence.split())
        yield row("Convert the sentence to title case.", title, ["rewriting", "lang:en"], sentence)
    for sentence in SENTENCES_ZH:
        yield row(
            "把句子中的“我”改成“我们”。",
            sentence.replace("我", "我们") + "。",
            ["rewriting", "lang:zh"],
            sentence,
        )
        yield row(
            "这句话有多少个汉字？", f"这句话有 {len(sentence)} 个汉字。", ["rewriting", "lang:zh"], sentence
        )
    _ = rng


def sorting(rng: random.Random) -> Iterator[Row]:
    for _ in range(260):
        numbers = rng.sample(range(1, 200), rng.randint(4, 7))
        shown = ", ".join(map(str, numbers))
        kind = rng.randrange(5)
        if kind == 0:
            yield row("Sort these numbers from smallest to largest.", ", ".join(map(str, sorted(numbers))),
                      ["sorting", "lang:en"], shown)  # fmt: skip
        elif kind == 1:
            yield row("把这些数从大到小排列。", "，".join(map(str, sorted(numbers, reverse=True))),
                      ["sorting", "lang:zh"], "，".join(map(str, numbers)))  # fmt: skip
        elif kind == 2:
            words = rng.sample(WORDS_EN, rng.randint(4, 6))
            yield row("Sort these words alphabetically.", ", ".join(sorted(words)), ["sorting", "lang:en"],
                      ", ".join(words))  # fmt: skip
        elif kind == 3:
            yield row("What is the largest number in the list, and what is the sum of all of them?",
                      f"The largest is {max(numbers)}; the sum is {sum(numbers)}.", ["sorting", "lang:en"], shown)  # fmt: skip
        else:
            yield row("这组数中最小的是哪个？它们的和是多少？", f"最小的是 {min(numbers)}，和是 {sum(numbers)}。",
                      ["sorting", "lang:zh"], "，".join(map(str, numbers)))  # fmt: skip


def dates(rng: random.Random) -> Iterator[Row]:
    for _ in range(420):
        day = datetime.date(2000, 1, 1) + datetime.timedelta(days=rng.randint(0, 365 * 30))
        kind = rng.randrange(5)
        if kind == 0:
            yield row(f"What day of the week was {day.isoformat()}?",
                      f"{day.isoformat()} was a {WEEKDAYS_EN[day.weekday()]}.", ["dates", "lang:en"])  # fmt: skip
        elif kind == 1:
            yield row(f"{day.year}年{day.month}月{day.day}日是星期几？",
                      f"{day.year}年{day.month}月{day.day}日是{WEEKDAYS_ZH[day.weekday()]}。", ["dates", "lang:zh"])  # fmt: skip
        elif kind == 2:
            n = rng.randint(3, 60)
            later = day + datetime.timedelta(days=n)
            yield row(f"What date is {n} days after {day.isoformat()}?",
                      f"{n} days after {day.isoformat()} is {later.isoformat()}.", ["dates", "lang:en"])  # fmt: skip
        elif kind == 3:
            year, month = day.year, day.month
            days = calendar.monthrange(year, month)[1]
            yield row(
                f"{year}年{month}月有多少天？", f"{year}年{month}月有 {days} 天。", ["dates", "lang:zh"]
            )
        else:
            year = day.year
            leap = calendar.isleap(year)
            answer = f"Yes, {year} is a leap year." if leap else f"No, {year} is not a leap year."
            yield row(f"Is {year} a leap year?", answer + f" February {year} has {29 if leap else 28} days.",
                      ["dates", "lang:en"])  # fmt: skip


ZH_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1..99999 in Chinese numerals (一万零五百, 三千零七, 十二, 一百一十)."""
    if n == 0:
        return ZH_DIGITS[0]
    units = ((10000, "万"), (1000, "千"), (100, "百"), (10, "十"), (1, ""))
    out, zero_pending, started = "", False, False
    for value, unit in units:
        digit = n // value % 10 if value < 10000 else n // value
        if digit == 0:
            zero_pending = started
            continue
        if zero_pending:
            out += ZH_DIGITS[0]
            zero_pending = False
        out += ZH_DIGITS[digit] + unit
        started = True
    return out[1:] if out.startswith("一十") else out


ROMAN = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
         (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))  # fmt: skip


def roman(n: int) -> str:
    out = ""
    for value, letters in ROMAN:
        count, n = divmod(n, value)
        out += letters * count
    return out


def numerals(rng: random.Random) -> Iterator[Row]:
    for _ in range(320):
        kind = rng.randrange(4)
        if kind == 0:
            n = rng.randint(11, 99999)
            yield row(
                f"把 {n} 写成汉字数字。", f"{n} 写成汉字是“{chinese_number(n)}”。", ["numerals", "lang:zh"]
            )
        elif kind == 1:
            n = rng.randint(11, 99999)
            yield row(f"“{chinese_number(n)}”用阿拉伯数字怎么写？", f"“{chinese_number(n)}”写作 {n}。",
                      ["numerals", "lang:zh"])  # fmt: skip
        elif kind == 2:
            n = rng.randint(4, 3999)
            yield row(
                f"Write {n} in Roman numerals.",
                f"{n} in Roman numerals is {roman(n)}.",
                ["numerals", "lang:en"],
            )
        else:
            n = rng.randint(4, 3999)
            yield row(
                f"What number is the Roman numeral {roman(n)}?",
                f"{roman(n)} is {n}.",
                ["numerals", "lang:en"],
            )


def percentages(rng: random.Random) -> Iterator[Row]:
    for _ in range(300):
        kind = rng.randrange(4)
        if kind == 0:
            p, base = rng.choice((5, 10, 15, 20, 25, 30, 40, 50, 60, 75)), 20 * rng.randint(1, 200)
            yield row(
                f"What is {p}% of {base}?",
                f"{p}% of {base} is {base * p // 100:g}.",
                ["percentages", "lang:en"],
            )
        elif kind == 1:
            price, off = 10 * rng.randint(2, 300), rng.choice((1, 2, 3, 5, 8))
            paid = price * (10 - off) // 10
            yield row(f"一件商品原价 {price} 元，打{10 - off}折后是多少元？", f"打{10 - off}折后是 {price} × 0.{10 - off} = {paid} 元。",
                      ["percentages", "lang:zh"])  # fmt: skip
        elif kind == 2:
            a, b = rng.randint(1, 9), rng.randint(2, 10)
            if a >= b:
                a, b = b - 1 or 1, b
            g = math.gcd(a, b)
            yield row(f"Simplify the fraction {a * 3}/{b * 3}.", f"{a * 3}/{b * 3} = {a // g}/{b // g}.",
                      ["percentages", "lang:en"])  # fmt: skip
        else:
            x, y = rng.randint(1, 999) / 100, rng.randint(1, 999) / 100
            if x == y:
                continue
            bigger = max(x, y)
            yield row(f"{x:g} 和 {y:g} 哪个更大？", f"{bigger:g} 更大。", ["percentages", "lang:zh"])


def hhmm(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def clock(rng: random.Random) -> Iterator[Row]:
    for _ in range(260):
        start = rng.randint(0, 23 * 60 + 59)
        add = rng.randint(5, 9 * 60)
        end = (start + add) % (24 * 60)
        h, m = divmod(add, 60)
        if rng.random() < 0.5:
            span = (f"{h} hours and {m} minutes" if h else f"{m} minutes") if m else f"{h} hours"
            yield row(f"It is {hhmm(start)} now. What time will it be in {span}?",
                      f"It will be {hhmm(end)}.", ["clock", "lang:en"])  # fmt: skip
        else:
            span = (f"{h} 小时 {m} 分钟" if h else f"{m} 分钟") if m else f"{h} 小时"
            yield row(
                f"现在是 {hhmm(start)}，再过 {span} 是几点？", f"是 {hhmm(end)}。", ["clock", "lang:zh"]
            )


LONG_WORDS = ("analysis", "blueprint", "calendar", "dolphin", "elephant", "festival", "grammar", "horizon",
              "island", "journey", "kingdom", "lemonade", "magnet", "notebook", "octopus", "pyramid",
              "question", "rainbow", "satellite", "thunder", "umbrella", "volcano", "window", "yogurt")  # fmt: skip


def words(rng: random.Random) -> Iterator[Row]:
    pool = WORDS_EN + LONG_WORDS
    for word in pool:
        yield row("Spell the word backwards.", word[::-1], ["words", "lang:en"], word)
        yield row(f'How many letters are in the word "{word}"?', f'"{word}" has {len(word)} letters.',
                  ["words", "lang:en"])  # fmt: skip
        letter = rng.choice(sorted(set(word)))
        yield row(f'How many times does the letter "{letter}" appear in "{word}"?',
                  f'The letter "{letter}" appears {word.count(letter)} time{"s" if word.count(letter) > 1 else ""} in "{word}".',
                  ["words", "lang:en"])  # fmt: skip
    for _ in range(80):
        chosen = rng.sample(pool, 3)
        longest = max(chosen, key=lambda w: (len(w), w))
        yield row("Which of these words is the longest?", f'"{longest}" ({len(longest)} letters).', ["words", "lang:en"],
                  ", ".join(chosen))  # fmt: skip


PEOPLE = (("Li Wei", "李伟"), ("Zhang Min", "张敏"), ("Wang Fang", "王芳"), ("Chen Jie", "陈杰"),
          ("Anna Schmidt", "安娜"), ("Tom Baker", "汤姆"), ("Maria Lopez", "玛丽亚"), ("Liu Yang", "刘洋"))  # fmt: skip
CITIES = (("Beijing", "北京"), ("Shanghai", "上海"), ("Shenzhen", "深圳"), ("Chengdu", "成都"), ("Berlin", "柏林"),
          ("Madrid", "马德里"), ("Toronto", "多伦多"), ("Osaka", "大阪"))  # fmt: skip


def extraction(rng: random.Random) -> Iterator[Row]:
    for _ in range(260):
        (name_en, name_zh), (city_en, city_zh) = rng.choice(PEOPLE), rng.choice(CITIES)
        age = rng.randint(19, 70)
        if rng.random() < 0.5:
            text = f"{name_en} is {age} years old and lives in {city_en}."
            answer = json.dumps({"name": name_en, "age": age, "city": city_en}, ensure_ascii=False)
            yield row("Extract the name, age and city as a JSON object with the keys name, age and city.", answer,
                      ["extraction", "lang:en"], text)  # fmt: skip
        else:
            text = f"{name_zh}今年{age}岁，住在{city_zh}。"
            answer = json.dumps({"姓名": name_zh, "年龄": age, "城市": city_zh}, ensure_ascii=False)
            yield row("从句子中提取姓名、年龄和城市，输出 JSON，键为“姓名”“年龄”“城市”。", answer,
                      ["extraction", "lang:zh"], text)  # fmt: skip


FAMILIES: tuple[Callable[[random.Random], Iterator[Row]], ...] = (
    arithmetic, number_facts, conversions, capitals, antonyms, rewriting, sorting, dates, numerals,
    percentages, clock, words, extraction,
)  # fmt: skip


def build() -> list[Row]:
    rng = random.Random(SEED)
    rows: list[Row] = []
    seen: set[tuple[object, object]] = set()
    for family in FAMILIES:
        for item in family(rng):
            key = (item["instruction"], item["input"])
            if key not in seen:  # random draws can repeat a question
                seen.add(key)
                rows.append(item)
    return rows


def main() -> None:
    rows = build()
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} examples to {OUT}")


if __name__ == "__main__":
    main()
