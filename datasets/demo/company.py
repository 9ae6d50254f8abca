"""The fictional company of the demo: Qinghe Goods (青禾生活用品有限公司) and its private facts.

Everything here is invented: the numbers, names, codes and dates are chosen so that no model
can know them, and several are deliberately unlike the usual answers (a 30-day return window
where 7 days is common, a 129-yuan free-shipping threshold) so that a guess is wrong.

Answers are bare values ("129", not "129元"): the question names the unit, and a small model
under RAG mostly answers with the bare number, which token metrics would otherwise score as
half wrong.

Each knowledge-base document is a title plus sentences. A sentence may carry facts:
``(question, answer)`` pairs whose answer occurs verbatim in the sentence. The build script
writes the documents from these sentences and the scenario-2 questions from the facts, so
every reference answer is in the knowledge base by construction (``tests/test_demo_data.py``
checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fact:
    question: str
    answer: str


@dataclass(frozen=True)
class Sentence:
    text: str
    facts: tuple[Fact, ...] = ()


@dataclass
class Document:
    filename: str
    title: str
    lang: str
    sections: list[tuple[str, list[Sentence]]] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"# {self.title}", ""]
        for heading, sentences in self.sections:
            if heading:
                lines += [f"## {heading}", ""]
            joiner = "" if self.lang == "zh" else " "
            lines += [joiner.join(s.text for s in sentences), ""]
        return "\n".join(lines)

    def sentences(self) -> list[Sentence]:
        return [s for _, sentences in self.sections for s in sentences]


def S(text: str, *facts: tuple[str, str]) -> Sentence:
    return Sentence(text, tuple(Fact(q, a) for q, a in facts))


DOCUMENTS: list[Document] = [
    Document("returns_refunds_zh.md", "青禾退换货与退款政策（2025 版）", "zh", [
        ("无理由退货", [
            S("自签收之日起 30 天内，未使用且包装完好的商品可无理由退货。",
              ("青禾商品自签收之日起多少天内可以无理由退货？", "30")),
            S("定制刻字商品和电子礼品卡不支持无理由退货。"),
            S("非质量问题退货的运费由顾客承担；青松会员每年可领取 6 张退货运费券。",
              ("青松会员每年可以领取几张退货运费券？", "6")),
        ]),
        ("质量问题", [
            S("因质量问题，签收后 150 天内可申请免费换新。",
              ("因质量问题，青禾商品签收后多少天内可以申请免费换新？", "150")),
            S("商品到货破损的，须在签收后 36 小时内通过青禾 App 上传照片报备。",
              ("商品到货破损，须在签收后多少小时内上传照片报备？", "36")),
        ]),
        ("退款与退货地址", [
            S("退款审核通过后，款项在 4 个工作日内原路退回。",
              ("青禾退款审核通过后，款项在几个工作日内原路退回？", "4")),
            S("退货请寄往浙江省嘉兴市海宁市禾风路 16 号青禾退货中心，邮编 314419。",
              ("青禾退货中心的邮编是多少？", "314419"),
              ("青禾退货中心位于海宁市哪条路？", "禾风路")),
        ]),
    ]),
    Document("shipping_zh.md", "青禾配送与运费说明", "zh", [
        ("运费", [
            S("订单实付满 129 元包邮，不满 129 元收取运费 11 元。",
              ("青禾订单实付满多少元包邮？", "129"),
              ("青禾订单不满包邮门槛时收取多少元运费？", "11")),
            S("寄往新疆、西藏、青海的订单每单加收偏远地区运费 23 元。",
              ("寄往新疆、西藏、青海的青禾订单每单加收多少元偏远地区运费？", "23")),
        ]),
        ("发货", [
            S("每天 16:40 前支付的订单当天发货，之后支付的次日发货。",
              ("每天几点前支付的青禾订单当天发货？", "16:40")),
            S("青禾有三个发货仓：华东仓位于嘉兴，华南仓位于江门，西南仓位于遂宁。",
              ("青禾的华南仓位于哪个城市？", "江门"),
              ("青禾的西南仓位于哪个城市？", "遂宁")),
            S("快递签收后 12 天内未确认收货的，系统自动确认收货。",
              ("快递签收后多少天内未确认收货，青禾系统会自动确认收货？", "12")),
        ]),
    ]),
    Document("membership_zh.md", "青禾会员权益说明", "zh", [
        ("会员等级", [
            S("青禾会员分为三级：青芽会员、青禾会员和青松会员，其中青松会员为最高等级。",
              ("青禾会员体系中最高等级的会员叫什么？", "青松会员")),
            S("近 12 个月累计消费满 2400 元升为青禾会员，满 6800 元升为青松会员。",
              ("近 12 个月累计消费满多少元可以升为青松会员？", "6800"),
              ("近 12 个月累计消费满多少元可以升为青禾会员？", "2400")),
        ]),
        ("积分", [
            S("每消费 1 元积 1 分，青松会员享受 1.5 倍积分。",
              ("青松会员享受几倍积分？", "1.5")),
            S("每 150 积分可抵扣 1 元，积分有效期为 18 个月。",
              ("多少青禾积分可以抵扣 1 元？", "150"),
              ("青禾积分的有效期是多少个月？", "18")),
            S("会员生日当月可领取一张 35 元无门槛生日券。",
              ("青禾会员生日当月可以领取多少元的无门槛生日券？", "35")),
        ]),
    ]),
    Document("warranty_zh.md", "青禾保修与延保政策", "zh", [
        ("保修期限", [
            S("厨房电器整机保修 30 个月，电机保修 60 个月。",
              ("青禾厨房电器的整机保修多少个月？", "30"),
              ("青禾厨房电器的电机保修多少个月？", "60")),
            S("个护电器整机保修 14 个月。",
              ("青禾个护电器的整机保修多少个月？", "14")),
            S("保修卡编号由字母 QW 加 10 位数字组成，请妥善保管。",
              ("青禾保修卡编号以哪两个字母开头？", "QW")),
        ]),
        ("延保与维修", [
            S("青禾的延保服务名为禾保，每年 59 元，最多可延长 3 年。",
              ("青禾的延保服务叫什么名字？", "禾保"),
              ("青禾延保服务禾保每年多少元？", "59")),
            S("维修周期一般为 5 个工作日，超过 9 个工作日仍未修好的，可直接换新。",
              ("青禾维修超过几个工作日仍未修好可以直接换新？", "9")),
        ]),
    ]),
    Document("after_sales_service_zh.md", "青禾售后服务指南", "zh", [
        ("联系我们", [
            S("售后热线为 400-826-1573，服务时间为每天 8:30 至 21:30，节假日不休。",
              ("青禾的售后热线号码是多少？", "400-826-1573"),
              ("青禾售后热线每天几点结束服务？", "21:30")),
            S("青禾 App 里的在线客服助手名叫禾小满。",
              ("青禾 App 里的在线客服助手叫什么名字？", "禾小满")),
        ]),
        ("上门安装", [
            S("大件商品同城免费上门安装，安装师傅在下单后 40 小时内联系顾客预约。",
              ("青禾安装师傅在下单后多少小时内联系顾客预约？", "40")),
            S("距离最近服务网点超过 30 公里的地址，每次上门加收 60 元远程费。",
              ("距离服务网点超过 30 公里时，青禾每次上门加收多少元远程费？", "60")),
        ]),
        ("以旧换新、价格保护与发票", [
            S("以旧换新时交回一台同类旧电器，可抵扣 85 元。",
              ("青禾以旧换新交回一台同类旧电器可以抵扣多少元？", "85")),
            S("签收后 15 天内商品降价的，可申请退还差价，每个订单最多申请 2 次。",
              ("青禾价格保护期是签收后多少天？", "15"),
              ("青禾每个订单最多可以申请几次价格保护？", "2")),
            S("电子发票可在订单完成后 180 天内申请开具。",
              ("青禾订单完成后多少天内可以申请电子发票？", "180")),
        ]),
    ]),
    Document("products_zh.md", "青禾产品手册（节选）", "zh", [
        ("厨房电器", [
            S("云朵空气炸锅的型号为 QH-AF215，容量 4.5 升，建议零售价 329 元。",
              ("云朵空气炸锅的型号是什么？", "QH-AF215"),
              ("云朵空气炸锅的容量是多少升？", "4.5")),
            S("竹影电热水壶的型号为 QH-KT082，容量 1.7 升，采用 304 不锈钢内胆。",
              ("竹影电热水壶的型号是什么？", "QH-KT082")),
            S("山岚破壁机的型号为 QH-BL630，最高转速为每分钟 32000 转。",
              ("山岚破壁机的最高转速是每分钟多少转？", "32000")),
        ]),
        ("家纺床品", [
            S("云眠乳胶枕的型号为 QH-PL118，乳胶含量为 93%。",
              ("云眠乳胶枕的乳胶含量是百分之多少？", "93%")),
            S("素色四件套的型号为 QH-BD402，采用 70 支长绒棉。",
              ("青禾素色四件套采用多少支长绒棉？", "70")),
        ]),
        ("个护与收纳", [
            S("禾光电动牙刷的型号为 QH-TB360，充满电可连续使用 45 天。",
              ("禾光电动牙刷充满电可以连续使用多少天？", "45")),
            S("轻风吹风机的型号为 QH-HD190，额定功率为 1600 瓦。",
              ("轻风吹风机的型号是什么？", "QH-HD190")),
            S("叠叠收纳箱的型号为 QH-SB055，容量为 55 升。",
              ("叠叠收纳箱的型号是什么？", "QH-SB055")),
        ]),
    ]),
    Document("employee_handbook_zh.md", "青禾员工手册（节选）", "zh", [
        ("请假", [
            S("员工入职满一年后，每年享有 10 天带薪年假；入职满五年后，每年享有 15 天带薪年假。"),
            S("未休完的年假最多可结转 5 天到下一年，结转的天数须在次年 3 月 31 日前休完。",
              ("青禾员工结转的年假须在次年几月几日前休完？", "3月31日")),
            S("请年假须至少提前 5 个工作日在 HR 系统中提交申请，由直属经理审批。"),
        ]),
        ("差旅报销", [
            S("出差结束后 15 天内，须在财务系统中提交报销申请并上传发票。"),
            S("住宿标准为一线城市每晚不超过 600 元，其他城市每晚不超过 400 元。",
              ("青禾员工在一线城市出差，住宿每晚不超过多少元？", "600")),
            S("出差期间每天发放 120 元餐费补贴，无需提供餐饮发票。",
              ("青禾员工出差期间每天的餐费补贴是多少元？", "120")),
        ]),
    ]),
    Document("company_profile_en.md", "Qinghe Goods: company profile", "en", [
        ("", [
            S("Qinghe Goods (青禾生活用品有限公司) was founded in 2014 in Hangzhou by Lin Wanzhou.",
              ("In which year was Qinghe Goods founded?", "2014"),
              ("Who founded Qinghe Goods?", "Lin Wanzhou")),
            S("The company employs 1260 people in three offices."),
            S("The headquarters are at 88 Wensan Road, Xihu District, Hangzhou."),
            S("The Berlin office at Torstrasse 12 serves customers in Europe.",
              ("On which street is the Qinghe Goods office in Berlin?", "Torstrasse")),
            S("The company slogan is: Simple things, done well.",
              ("What is the company slogan of Qinghe Goods?", "Simple things, done well")),
            S("Support agents handle tickets in the internal ticket system, which is called Heron.",
              ("What is the name of the internal ticket system at Qinghe Goods?", "Heron")),
        ]),
    ]),
    Document("b2b_wholesale_en.md", "Qinghe Goods: business and wholesale orders", "en", [
        ("Orders", [
            S("Business customers must order at least 40 units of each product.",
              ("How many units of each product must a Qinghe business customer order at least?", "40")),
            S("Orders above 20000 CNY get a 6% discount, and orders above 100000 CNY get an 11% discount.",
              ("What discount does a Qinghe business order above 100000 CNY get?", "11%")),
        ]),
        ("Terms", [
            S("Payment is due 45 days after the invoice date.",
              ("How many days after the invoice date is payment due for Qinghe business orders?", "45")),
            S("A written quote from Qinghe Goods is valid for 21 days.",
              ("For how many days is a written quote from Qinghe Goods valid?", "21")),
            S("Business enquiries go to the wholesale desk in Shenzhen."),
        ]),
    ]),
]  # fmt: skip


def all_facts() -> list[tuple[Document, Sentence, Fact]]:
    """Every (document, sentence, fact), in document order."""
    return [(doc, s, f) for doc in DOCUMENTS for s in doc.sentences() for f in s.facts]
