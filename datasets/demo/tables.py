"""Tables for the demo's question sets: easy general knowledge (scenario 1 and the general-ability
suite) and the ticket-routing task (scenario 3). Read by ``datasets/demo/build.py``."""

from __future__ import annotations

# ---- easy general knowledge: (question with its answer-format hint, short answer) ------------
# Short questions a 0.5B model answers right when told to answer briefly; the hint is in the
# question's own language (a bilingual hint made the model answer in the other language).
# Questions that qwen2.5-coder-0.5b got wrong in a first measurement (the sun rises in the
# west, China's capital is Shanghai, ...) were taken out: scenario 1 is, by definition,
# questions the base model already answers.
CAPITALS_ZH = [
    ("日本", "东京"),
    ("法国", "巴黎"),
    ("英国", "伦敦"),
    ("俄罗斯", "莫斯科"),
    ("意大利", "罗马"),
    ("德国", "柏林"),
    ("埃及", "开罗"),
]
CAPITALS_EN = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("the United Kingdom", "London"),
    ("Germany", "Berlin"),
    ("Italy", "Rome"),
    ("China", "Beijing"),
    ("Russia", "Moscow"),
    ("Spain", "Madrid"),
    ("Egypt", "Cairo"),
    ("South Korea", "Seoul"),
    ("Greece", "Athens"),
    ("Thailand", "Bangkok"),
    ("Portugal", "Lisbon"),
    ("Austria", "Vienna"),
    ("Norway", "Oslo"),
    ("Poland", "Warsaw"),
]
NUMBER_HINT_ZH, WORD_HINT_ZH = "只回答数字。", "只用一个词回答。"
NUMBER_HINT_EN, WORD_HINT_EN = "Answer with a number only.", "Answer with one word only."
FACTS_ZH = [
    ("水的化学式是什么？只回答化学式。", "H2O"),
    ("一周有几天？" + NUMBER_HINT_ZH, "7"),
    ("一年有几个月？" + NUMBER_HINT_ZH, "12"),
    ("大熊猫最主要的食物是什么？" + WORD_HINT_ZH, "竹子"),
    ("1 公里等于多少米？" + NUMBER_HINT_ZH, "1000"),
    ("一小时有多少分钟？" + NUMBER_HINT_ZH, "60"),
    ("地球绕着哪颗恒星转？" + WORD_HINT_ZH, "太阳"),
    ("中国的国庆节是几月几日？只回答日期。", "10月1日"),
    ("长城位于哪个国家？" + WORD_HINT_ZH, "中国"),
    ("一天有多少小时？" + NUMBER_HINT_ZH, "24"),
    ("我们用什么器官看东西？" + WORD_HINT_ZH, "眼睛"),
    ("一分钟有多少秒？" + NUMBER_HINT_ZH, "60"),
    ("人有几只手？" + NUMBER_HINT_ZH, "2"),
    ("三角形有几条边？" + NUMBER_HINT_ZH, "3"),
]  # fmt: skip
FACTS_EN = [
    ("What is the chemical formula of water? Answer with the formula only.", "H2O"),
    ("How many days are there in a week? " + NUMBER_HINT_EN, "7"),
    ("Which planet do we live on? " + WORD_HINT_EN, "Earth"),
    ("What colour is the sky on a clear day? " + WORD_HINT_EN, "Blue"),
    ("Which animal is known as the king of the jungle? " + WORD_HINT_EN, "Lion"),
    ("How many legs does a spider have? " + NUMBER_HINT_EN, "8"),
    ("What is the opposite of hot? " + WORD_HINT_EN, "Cold"),
    ("Which organ pumps blood through the body? " + WORD_HINT_EN, "Heart"),
    ("How many minutes are there in an hour? " + NUMBER_HINT_EN, "60"),
    ("What does a thermometer measure? " + WORD_HINT_EN, "Temperature"),
    ("Which season comes after winter? " + WORD_HINT_EN, "Spring"),
    ("What gas do humans need to breathe to live? " + WORD_HINT_EN, "Oxygen"),
    ("Which shape has three sides? " + WORD_HINT_EN, "Triangle"),
    ("How many hours are there in a day? " + NUMBER_HINT_EN, "24"),
    ("What is the opposite of up? " + WORD_HINT_EN, "Down"),
    ("How many months are there in a year? " + NUMBER_HINT_EN, "12"),
]  # fmt: skip

# ---- scenario 3: routing tickets into Qinghe's queues ----------------------------------------
# A queue code is "QG-" + the product line's letter + the issue type's digit. The letters and
# digits are arbitrary: nothing in the prompt or the knowledge base says which is which, so only
# examples can teach them.
PRODUCT_LINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "kitchen": ("R", ("空气炸锅", "电饭煲", "电热水壶", "破壁机", "咖啡机", "电烤箱", "电磁炉",
                      "豆浆机", "榨汁机", "微波炉", "养生壶", "煎烤机")),
    "bedding": ("M", ("四件套", "蚕丝被", "乳胶枕", "羽绒被", "浴巾", "凉席", "床垫", "毛毯",
                      "记忆棉枕", "纯棉床单", "夏凉被", "抱枕")),
    "care": ("T", ("电动牙刷", "吹风机", "剃须刀", "冲牙器", "洗发水", "沐浴露", "卷发棒", "洗衣凝珠",
                   "洗脸巾", "牙膏", "护手霜", "洗面奶")),
    "storage": ("V", ("收纳箱", "衣架", "鞋柜", "置物架", "真空压缩袋", "储物罐", "挂钩", "收纳盒",
                      "衣柜收纳袋", "折叠凳", "脏衣篮", "书架")),
}  # fmt: skip
ISSUE_TYPES: dict[str, str] = {"delivery": "3", "defect": "7", "refund": "1", "usage": "5"}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "delivery": (
        "我{d}天前下的单，订单号{n}，{p}到现在还没发货。",
        "快递显示{p}已经签收，但我根本没收到，订单{n}。",
        "物流信息停在{city}转运中心{d}天没动了，我买的是{p}。",
        "{p}的收货地址填错了，能改成{city}的新地址吗？订单号{n}。",
        "说好{d}天内送到，{p}还在路上，我急着用。",
        "快递员把{p}放在驿站也没通知我，现在找不到件了。",
        "同一个订单里其他东西都到了，就{p}没到。",
        "能不能周末再配送{p}？工作日家里没人收。",
        "{p}的物流单号查不到任何信息，订单号{n}。",
        "我在{city}，{p}发货{d}天了还没到，什么情况？",
    ),
    "defect": (
        "刚收到的{p}有明显裂痕，没法用。",
        "{p}用了{d}天就坏了，没法再用。",
        "{p}一打开就有很重的异味，是不是质量有问题？",
        "{p}外观有好几道划痕，做工很粗糙。",
        "新买的{p}有个零件松动，一碰就掉。",
        "{p}用的时候声音特别大，感觉是次品。",
        "{p}才用了一次就变形了，质量太差。",
        "收到的{p}上面有污渍，还有破损。",
        "{p}收到就是坏的，订单号{n}，请处理。",
        "{p}用了不到{d}天就出故障了。",
    ),
    "refund": (
        "{p}不想要了，想申请退货，订单号{n}。",
        "退货已经寄回{d}天了，{p}的退款还没到账。",
        "我拍错了{p}的规格，怎么申请退款？",
        "{p}的退货申请被拒绝了，为什么？订单{n}。",
        "{p}还没拆封，想退货退款。",
        "申请了{p}的退款，钱退到哪里去了？",
        "{p}买重复了，想退掉一件，订单号{n}。",
        "{p}退货的运费谁出？我想退掉它。",
        "{p}的退款只退了一部分，剩下的什么时候退？",
        "订单{n}的{p}我取消了，退款多久到账？",
    ),
    "usage": (
        "请问{p}第一次使用前需要清洗吗？",
        "{p}怎么安装？说明书看不太懂。",
        "{p}平时应该怎么保养比较好？",
        "{p}可以直接用水洗吗？",
        "{p}有没有更详细的使用教程或视频？",
        "{p}的尺寸是多少？我家地方小。",
        "{p}适合老人和小孩用吗？",
        "{p}的配件在哪里能单独买到？",
        "想问一下{p}每天用多久比较合适？",
        "{p}第一次用有什么要注意的地方吗？",
    ),
}
OPENERS = ("", "", "", "你好，", "您好，", "客服你好，", "在吗？", "麻烦问一下，", "急！")
CLOSERS = ("", "", "", "谢谢。", "麻烦尽快处理。", "谢谢！", "等你们回复。", "辛苦了。")
CITIES = ("杭州", "成都", "武汉", "西安", "沈阳", "厦门", "长沙", "郑州", "昆明", "南昌", "济南", "合肥")
