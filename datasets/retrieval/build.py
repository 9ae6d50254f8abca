"""Write the retrieval sets over the demo knowledge base (``datasets/demo/kb``).

- ``paraphrase_zh.jsonl``: Chinese questions that say what a passage says in other words (a
  user's way of asking), so that word overlap alone does not find the passage;
- ``en_to_zh.jsonl``: English questions about the Chinese documents.

Each item is a question and its gold passage: the file (``source``) and an exact substring of it
(``evidence``, 15-80 characters) that answers the question. A retriever hits when one of its
top-k chunks contains the evidence.

Rules, checked for every item (``check_items``):

- the evidence is a substring of the source file and lies inside one chunk of the file at the
  default chunking (chunk_size 500, overlap 80, the knowledge base's own chunker);
- paraphrase set: the question shares at most ``MAX_SHARED`` BM25 tokens of two or more
  characters with the evidence (the knowledge base's tokenizer, jieba search mode, stop words
  aside), so BM25 has next to nothing to match on;
- English set: no CJK character in the question.

``split`` is ``tune`` or ``check`` by source file (``SPLIT``): each demo file is one chunk at
the default chunking, so the two halves never share a gold passage, and a default chosen on one
half can be checked on the other.

Run ``python datasets/retrieval/build.py`` to write the files, ``--check`` to verify that the
files are current and every rule holds (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
KB = HERE.parent / "demo" / "kb"
PARAPHRASE = "paraphrase_zh.jsonl"
EN_TO_ZH = "en_to_zh.jsonl"

CHUNK_SIZE = 500
CHUNK_OVERLAP = 80
EVIDENCE_CHARS = (15, 80)
MAX_SHARED = 1  # shared BM25 tokens of 2+ characters between a paraphrase question and its evidence
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")

# Which half each source file's questions belong to (about half of each set on each side).
SPLIT = {
    "employee_handbook_zh.md": "tune",
    "membership_zh.md": "tune",
    "shipping_zh.md": "tune",
    "warranty_zh.md": "tune",
    "after_sales_service_zh.md": "check",
    "products_zh.md": "check",
    "returns_refunds_zh.md": "check",
}

# (source file, question, evidence)
PARAPHRASE_ITEMS: list[tuple[str, str, str]] = [
    (
        "after_sales_service_zh.md",
        "产品出了毛病想打电话找人处理，拨哪个号码？",
        "售后热线为 400-826-1573，服务时间为每天 8:30 至 21:30",
    ),
    (
        "after_sales_service_zh.md",
        "过年过节的时候客服还有人接听吗？几点下班？",
        "服务时间为每天 8:30 至 21:30，节假日不休",
    ),
    (
        "after_sales_service_zh.md",
        "手机应用上那个自动回复的智能小帮手叫什么名字？",
        "青禾 App 里的在线客服助手名叫禾小满",
    ),
    (
        "after_sales_service_zh.md",
        "买了冰箱那样的大家伙，同一个城市里派人来装要花钱吗？",
        "大件商品同城免费上门安装，安装师傅在下单后 40 小时内联系顾客预约",
    ),
    (
        "after_sales_service_zh.md",
        "付完款以后多长时间会有工人打电话来约时间装机？",
        "安装师傅在下单后 40 小时内联系顾客预约",
    ),
    (
        "after_sales_service_zh.md",
        "我家住得离市区很远，师傅过来要额外付钱吗？",
        "距离最近服务网点超过 30 公里的地址，每次上门加收 60 元远程费",
    ),
    (
        "after_sales_service_zh.md",
        "拿家里用过的老机器来折价买新的，能便宜多少钱？",
        "以旧换新时交回一台同类旧电器，可抵扣 85 元",
    ),
    (
        "after_sales_service_zh.md",
        "刚买完东西就便宜了，能把多付的钱要回来吗？",
        "签收后 15 天内商品降价的，可申请退还差价",
    ),
    ("after_sales_service_zh.md", "同一笔购物的价差补偿能要几回？", "可申请退还差价，每个订单最多申请 2 次"),
    (
        "after_sales_service_zh.md",
        "交易结束后隔多久就不能再开报销凭证了？",
        "电子发票可在订单完成后 180 天内申请开具",
    ),
    (
        "employee_handbook_zh.md",
        "在公司干满十二个月的人，一年能休多少天不扣工资的假？",
        "员工入职满一年后，每年享有 10 天带薪年假",
    ),
    (
        "employee_handbook_zh.md",
        "工龄超过五个年头的老同事休假天数有变化吗？",
        "入职满五年后，每年享有 15 天带薪年假",
    ),
    (
        "employee_handbook_zh.md",
        "今年没用掉的假期能留到明年接着用吗？能留多少？",
        "未休完的年假最多可结转 5 天到下一年",
    ),
    (
        "employee_handbook_zh.md",
        "从上一年带过来的假期截止什么时候必须用掉？",
        "结转的天数须在次年 3 月 31 日前休完",
    ),
    (
        "employee_handbook_zh.md",
        "想放几天假的话要早多久打报告，谁来批？",
        "请年假须至少提前 5 个工作日在 HR 系统中提交申请，由直属经理审批",
    ),
    (
        "employee_handbook_zh.md",
        "外地公干回来，拿票据找公司退钱有时间限制吗？",
        "出差结束后 15 天内，须在财务系统中提交报销申请并上传发票",
    ),
    (
        "employee_handbook_zh.md",
        "去北京上海这种大都市办事，酒店一晚最多能花多少？",
        "住宿标准为一线城市每晚不超过 600 元",
    ),
    (
        "employee_handbook_zh.md",
        "去小地方出公差，过夜的旅馆钱上限是多少？",
        "一线城市每晚不超过 600 元，其他城市每晚不超过 400 元",
    ),
    (
        "employee_handbook_zh.md",
        "在外地办公事时吃饭的钱公司怎么给？要不要留小票？",
        "出差期间每天发放 120 元餐费补贴，无需提供餐饮发票",
    ),
    (
        "membership_zh.md",
        "你们的顾客级别一共有几档，各叫什么？",
        "青禾会员分为三级：青芽会员、青禾会员和青松会员",
    ),
    (
        "membership_zh.md",
        "顶级的那一档 VIP 叫什么名字？",
        "青芽会员、青禾会员和青松会员，其中青松会员为最高等级",
    ),
    (
        "membership_zh.md",
        "一年里买东西花掉多少钱可以晋级到第二档？",
        "近 12 个月累计消费满 2400 元升为青禾会员",
    ),
    (
        "membership_zh.md",
        "要攒到多大开销才能拿到最高的那个身份？",
        "满 2400 元升为青禾会员，满 6800 元升为青松会员",
    ),
    (
        "membership_zh.md",
        "花一块钱能攒几点？顶级客户有加成吗？",
        "每消费 1 元积 1 分，青松会员享受 1.5 倍积分",
    ),
    (
        "membership_zh.md",
        "最高级别的客户买东西攒点数比别人快多少？",
        "每消费 1 元积 1 分，青松会员享受 1.5 倍积分",
    ),
    ("membership_zh.md", "攒下的点数能当钱花吗，怎么换算？", "每 150 积分可抵扣 1 元，积分有效期为 18 个月"),
    (
        "membership_zh.md",
        "攒的点数放太久会不会作废？能保留多长时间？",
        "每 150 积分可抵扣 1 元，积分有效期为 18 个月",
    ),
    ("membership_zh.md", "过诞辰的那个月份有什么福利？", "会员生日当月可领取一张 35 元无门槛生日券"),
    ("products_zh.md", "那款不用油就能炸东西的锅能装多少？", "云朵空气炸锅的型号为 QH-AF215，容量 4.5 升"),
    ("products_zh.md", "无油煎炸的那台机器在店里标价大概卖多少钱？", "容量 4.5 升，建议零售价 329 元"),
    ("products_zh.md", "烧开水用的那个壶一次能装多少？", "竹影电热水壶的型号为 QH-KT082，容量 1.7 升"),
    ("products_zh.md", "烧水壶里面是什么材质做的？", "容量 1.7 升，采用 304 不锈钢内胆"),
    (
        "products_zh.md",
        "打豆浆的料理机马力多大，刀片一分钟能转几圈？",
        "山岚破壁机的型号为 QH-BL630，最高转速为每分钟 32000 转",
    ),
    (
        "products_zh.md",
        "那个橡胶树材料做的睡枕，天然成分占了百分之多少？",
        "云眠乳胶枕的型号为 QH-PL118，乳胶含量为 93%",
    ),
    ("products_zh.md", "床单被罩那一整套是用什么棉做的？", "素色四件套的型号为 QH-BD402，采用 70 支长绒棉"),
    (
        "products_zh.md",
        "刷牙的那个电器充一次能撑多久？",
        "禾光电动牙刷的型号为 QH-TB360，充满电可连续使用 45 天",
    ),
    ("products_zh.md", "吹头发的机器耗电功率多大？", "轻风吹风机的型号为 QH-HD190，额定功率为 1600 瓦"),
    ("products_zh.md", "放杂物的整理盒子能装多少？", "叠叠收纳箱的型号为 QH-SB055，容量为 55 升"),
    (
        "returns_refunds_zh.md",
        "买回来不喜欢、也没拆开用过，多长时间内还能退？",
        "自签收之日起 30 天内，未使用且包装完好的商品可无理由退货",
    ),
    (
        "returns_refunds_zh.md",
        "专门雕了名字的东西和线上购物卡，反悔了能退吗？",
        "定制刻字商品和电子礼品卡不支持无理由退货",
    ),
    ("returns_refunds_zh.md", "只是自己不想要了寄回去，邮费谁出？", "非质量问题退货的运费由顾客承担"),
    (
        "returns_refunds_zh.md",
        "最高级别客户一年能拿几张寄回商品的免邮凭证？",
        "青松会员每年可领取 6 张退货运费券",
    ),
    ("returns_refunds_zh.md", "东西坏了多久内能免费换？", "因质量问题，签收后 150 天内可申请免费换新"),
    (
        "returns_refunds_zh.md",
        "快递送来就摔坏了，要在多长时间内拍图告诉你们？",
        "商品到货破损的，须在签收后 36 小时内通过青禾 App 上传照片报备",
    ),
    (
        "returns_refunds_zh.md",
        "申请退钱被批准后，钱几天能回到我付款的账户？",
        "退款审核通过后，款项在 4 个工作日内原路退回",
    ),
    (
        "returns_refunds_zh.md",
        "不要的货要邮寄到哪个地址？",
        "退货请寄往浙江省嘉兴市海宁市禾风路 16 号青禾退货中心",
    ),
    ("returns_refunds_zh.md", "寄回包裹时填的邮政编码是多少？", "青禾退货中心，邮编 314419"),
    ("returns_refunds_zh.md", "已经拆封试用过的货还能随便退吗？", "未使用且包装完好的商品可无理由退货"),
    ("shipping_zh.md", "买够多少钱就不用自己出快递费？", "订单实付满 129 元包邮，不满 129 元收取运费 11 元"),
    (
        "shipping_zh.md",
        "凑不够免邮门槛的话，要加付多少寄送费？",
        "订单实付满 129 元包邮，不满 129 元收取运费 11 元",
    ),
    (
        "shipping_zh.md",
        "发到西北边疆那几个省份要多收钱吗？",
        "寄往新疆、西藏、青海的订单每单加收偏远地区运费 23 元",
    ),
    ("shipping_zh.md", "下午几点以前付款，包裹今天就能寄出？", "每天 16:40 前支付的订单当天发货"),
    ("shipping_zh.md", "傍晚才付的钱，东西哪天出库？", "每天 16:40 前支付的订单当天发货，之后支付的次日发货"),
    (
        "shipping_zh.md",
        "你们在广东那边有没有仓库，在哪座城市？",
        "青禾有三个发货仓：华东仓位于嘉兴，华南仓位于江门",
    ),
    ("shipping_zh.md", "四川那一带的货从哪个库房出？", "华南仓位于江门，西南仓位于遂宁"),
    (
        "shipping_zh.md",
        "包裹到了我一直没点完成，会怎么样？",
        "快递签收后 12 天内未确认收货的，系统自动确认收货",
    ),
    ("shipping_zh.md", "江浙沪地区的存货放在哪个城市？", "青禾有三个发货仓：华东仓位于嘉兴"),
    (
        "warranty_zh.md",
        "做饭用的家电坏了，多长时间内可以免费修？",
        "厨房电器整机保修 30 个月，电机保修 60 个月",
    ),
    ("warranty_zh.md", "锅具类机器的马达出问题，厂家管多久？", "厨房电器整机保修 30 个月，电机保修 60 个月"),
    (
        "warranty_zh.md",
        "剃须刀吹风筒这类打理仪容的小家电质保多久？",
        "电机保修 60 个月。个护电器整机保修 14 个月",
    ),
    ("warranty_zh.md", "维修凭证上的号码是什么格式？", "保修卡编号由字母 QW 加 10 位数字组成"),
    (
        "warranty_zh.md",
        "想把售后保障期拉长，那个付费项目叫什么、一年多少钱？",
        "青禾的延保服务名为禾保，每年 59 元",
    ),
    ("warranty_zh.md", "额外买的保障最长能加几年？", "每年 59 元，最多可延长 3 年"),
    (
        "warranty_zh.md",
        "送修以后大概要等多久才能拿回来？",
        "维修周期一般为 5 个工作日，超过 9 个工作日仍未修好的，可直接换新",
    ),
    (
        "warranty_zh.md",
        "修了好久都没弄好，能不能干脆给我换个新的？",
        "维修周期一般为 5 个工作日，超过 9 个工作日仍未修好的，可直接换新",
    ),
]

EN_TO_ZH_ITEMS: list[tuple[str, str, str]] = [
    ("after_sales_service_zh.md", "What is the after-sales hotline number?", "售后热线为 400-826-1573"),
    (
        "after_sales_service_zh.md",
        "What hours is customer service open, and does it close on public holidays?",
        "服务时间为每天 8:30 至 21:30，节假日不休",
    ),
    (
        "after_sales_service_zh.md",
        "What is the name of the online support assistant in the app?",
        "青禾 App 里的在线客服助手名叫禾小满",
    ),
    (
        "after_sales_service_zh.md",
        "Is home installation free for large items delivered in the same city?",
        "大件商品同城免费上门安装，安装师傅在下单后 40 小时内联系顾客预约",
    ),
    (
        "after_sales_service_zh.md",
        "How soon after I order will the installer contact me to book a visit?",
        "安装师傅在下单后 40 小时内联系顾客预约",
    ),
    (
        "after_sales_service_zh.md",
        "Is there an extra charge if I live far from the nearest service point?",
        "距离最近服务网点超过 30 公里的地址，每次上门加收 60 元远程费",
    ),
    (
        "after_sales_service_zh.md",
        "How much credit do I get for trading in an old appliance?",
        "以旧换新时交回一台同类旧电器，可抵扣 85 元",
    ),
    (
        "after_sales_service_zh.md",
        "If the price drops after delivery, can I get the difference back?",
        "签收后 15 天内商品降价的，可申请退还差价",
    ),
    (
        "after_sales_service_zh.md",
        "How many price-protection claims can I make on one order?",
        "可申请退还差价，每个订单最多申请 2 次",
    ),
    (
        "after_sales_service_zh.md",
        "How long after an order is completed can I request an electronic invoice?",
        "电子发票可在订单完成后 180 天内申请开具",
    ),
    (
        "employee_handbook_zh.md",
        "How many days of paid annual leave does an employee get after one year?",
        "员工入职满一年后，每年享有 10 天带薪年假",
    ),
    (
        "employee_handbook_zh.md",
        "How much annual leave do staff with five years of service get?",
        "入职满五年后，每年享有 15 天带薪年假",
    ),
    (
        "employee_handbook_zh.md",
        "Can unused annual leave be carried over into the next year?",
        "未休完的年假最多可结转 5 天到下一年",
    ),
    (
        "employee_handbook_zh.md",
        "By what date must carried-over leave days be used?",
        "结转的天数须在次年 3 月 31 日前休完",
    ),
    (
        "employee_handbook_zh.md",
        "How far in advance must I request annual leave, and who approves it?",
        "请年假须至少提前 5 个工作日在 HR 系统中提交申请，由直属经理审批",
    ),
    (
        "employee_handbook_zh.md",
        "What is the deadline for submitting a travel expense claim?",
        "出差结束后 15 天内，须在财务系统中提交报销申请并上传发票",
    ),
    (
        "employee_handbook_zh.md",
        "What is the nightly hotel limit in tier-one cities on a business trip?",
        "住宿标准为一线城市每晚不超过 600 元",
    ),
    (
        "employee_handbook_zh.md",
        "What is the hotel budget per night in smaller cities?",
        "一线城市每晚不超过 600 元，其他城市每晚不超过 400 元",
    ),
    (
        "employee_handbook_zh.md",
        "Is there a daily meal allowance on business trips, and do I need receipts?",
        "出差期间每天发放 120 元餐费补贴，无需提供餐饮发票",
    ),
    (
        "membership_zh.md",
        "How many membership tiers are there and what are they called?",
        "青禾会员分为三级：青芽会员、青禾会员和青松会员",
    ),
    (
        "membership_zh.md",
        "Which membership level is the highest?",
        "青芽会员、青禾会员和青松会员，其中青松会员为最高等级",
    ),
    (
        "membership_zh.md",
        "How much do I need to spend in a year to reach the middle membership tier?",
        "近 12 个月累计消费满 2400 元升为青禾会员",
    ),
    (
        "membership_zh.md",
        "What yearly spending is needed for the top membership tier?",
        "满 2400 元升为青禾会员，满 6800 元升为青松会员",
    ),
    (
        "membership_zh.md",
        "How many loyalty points do I earn per yuan spent?",
        "每消费 1 元积 1 分，青松会员享受 1.5 倍积分",
    ),
    (
        "membership_zh.md",
        "Do top-tier members earn points faster than others?",
        "每消费 1 元积 1 分，青松会员享受 1.5 倍积分",
    ),
    (
        "membership_zh.md",
        "How many points are worth one yuan off?",
        "每 150 积分可抵扣 1 元，积分有效期为 18 个月",
    ),
    ("membership_zh.md", "When do loyalty points expire?", "每 150 积分可抵扣 1 元，积分有效期为 18 个月"),
    (
        "membership_zh.md",
        "Do members get anything for their birthday?",
        "会员生日当月可领取一张 35 元无门槛生日券",
    ),
    (
        "products_zh.md",
        "What is the model number of the air fryer?",
        "云朵空气炸锅的型号为 QH-AF215，容量 4.5 升",
    ),
    (
        "products_zh.md",
        "What is the recommended retail price of the air fryer?",
        "容量 4.5 升，建议零售价 329 元",
    ),
    (
        "products_zh.md",
        "How much water does the electric kettle hold?",
        "竹影电热水壶的型号为 QH-KT082，容量 1.7 升",
    ),
    ("products_zh.md", "What is the inner pot of the kettle made of?", "容量 1.7 升，采用 304 不锈钢内胆"),
    (
        "products_zh.md",
        "How fast does the high-speed blender spin?",
        "山岚破壁机的型号为 QH-BL630，最高转速为每分钟 32000 转",
    ),
    (
        "products_zh.md",
        "What percentage of latex is in the latex pillow?",
        "云眠乳胶枕的型号为 QH-PL118，乳胶含量为 93%",
    ),
    (
        "products_zh.md",
        "What kind of cotton is the four-piece bedding set made from?",
        "素色四件套的型号为 QH-BD402，采用 70 支长绒棉",
    ),
    (
        "products_zh.md",
        "How long does the electric toothbrush last on a full charge?",
        "禾光电动牙刷的型号为 QH-TB360，充满电可连续使用 45 天",
    ),
    (
        "products_zh.md",
        "What is the rated power of the hair dryer?",
        "轻风吹风机的型号为 QH-HD190，额定功率为 1600 瓦",
    ),
    (
        "products_zh.md",
        "How many litres does the stackable storage box hold?",
        "叠叠收纳箱的型号为 QH-SB055，容量为 55 升",
    ),
    (
        "returns_refunds_zh.md",
        "How many days do I have to return an item without giving a reason?",
        "自签收之日起 30 天内，未使用且包装完好的商品可无理由退货",
    ),
    (
        "returns_refunds_zh.md",
        "Can engraved items or e-gift cards be returned without a reason?",
        "定制刻字商品和电子礼品卡不支持无理由退货",
    ),
    (
        "returns_refunds_zh.md",
        "Who pays the shipping when I send back something that is not defective?",
        "非质量问题退货的运费由顾客承担",
    ),
    (
        "returns_refunds_zh.md",
        "How many return shipping vouchers do top-tier members get each year?",
        "青松会员每年可领取 6 张退货运费券",
    ),
    (
        "returns_refunds_zh.md",
        "How long do I have to get a free replacement for a defective product?",
        "因质量问题，签收后 150 天内可申请免费换新",
    ),
    (
        "returns_refunds_zh.md",
        "My package arrived damaged. How quickly must I report it?",
        "商品到货破损的，须在签收后 36 小时内通过青禾 App 上传照片报备",
    ),
    (
        "returns_refunds_zh.md",
        "How long does it take to get my money back once a refund is approved?",
        "退款审核通过后，款项在 4 个工作日内原路退回",
    ),
    (
        "returns_refunds_zh.md",
        "Where should I send the items I am returning?",
        "退货请寄往浙江省嘉兴市海宁市禾风路 16 号青禾退货中心",
    ),
    ("returns_refunds_zh.md", "What is the postcode of the returns centre?", "青禾退货中心，邮编 314419"),
    (
        "returns_refunds_zh.md",
        "Does an item have to be unused to qualify for a no-questions-asked return?",
        "未使用且包装完好的商品可无理由退货",
    ),
    (
        "shipping_zh.md",
        "What is the minimum order for free shipping?",
        "订单实付满 129 元包邮，不满 129 元收取运费 11 元",
    ),
    (
        "shipping_zh.md",
        "How much is the delivery fee on a small order?",
        "订单实付满 129 元包邮，不满 129 元收取运费 11 元",
    ),
    (
        "shipping_zh.md",
        "Is there a surcharge for delivery to Xinjiang or Tibet?",
        "寄往新疆、西藏、青海的订单每单加收偏远地区运费 23 元",
    ),
    ("shipping_zh.md", "What is the cut-off time for same-day dispatch?", "每天 16:40 前支付的订单当天发货"),
    (
        "shipping_zh.md",
        "If I pay in the evening, when will my order ship?",
        "每天 16:40 前支付的订单当天发货，之后支付的次日发货",
    ),
    ("shipping_zh.md", "In which city is the East China warehouse?", "青禾有三个发货仓：华东仓位于嘉兴"),
    (
        "shipping_zh.md",
        "Which city hosts the South China warehouse?",
        "青禾有三个发货仓：华东仓位于嘉兴，华南仓位于江门",
    ),
    ("shipping_zh.md", "Where is the southwest warehouse located?", "华南仓位于江门，西南仓位于遂宁"),
    (
        "shipping_zh.md",
        "When is receipt confirmed automatically if I never confirm it myself?",
        "快递签收后 12 天内未确认收货的，系统自动确认收货",
    ),
    (
        "warranty_zh.md",
        "How long is the warranty on kitchen appliances?",
        "厨房电器整机保修 30 个月，电机保修 60 个月",
    ),
    (
        "warranty_zh.md",
        "How long is the motor of a kitchen appliance covered?",
        "厨房电器整机保修 30 个月，电机保修 60 个月",
    ),
    (
        "warranty_zh.md",
        "What is the warranty period for personal care appliances?",
        "电机保修 60 个月。个护电器整机保修 14 个月",
    ),
    (
        "warranty_zh.md",
        "What format does the warranty card number have?",
        "保修卡编号由字母 QW 加 10 位数字组成",
    ),
    (
        "warranty_zh.md",
        "What is the extended warranty service called and what does it cost?",
        "青禾的延保服务名为禾保，每年 59 元",
    ),
    (
        "warranty_zh.md",
        "By how many years can the warranty be extended at most?",
        "每年 59 元，最多可延长 3 年",
    ),
    (
        "warranty_zh.md",
        "How long do repairs usually take?",
        "维修周期一般为 5 个工作日，超过 9 个工作日仍未修好的，可直接换新",
    ),
    (
        "warranty_zh.md",
        "What happens if a repair takes more than nine working days?",
        "维修周期一般为 5 个工作日，超过 9 个工作日仍未修好的，可直接换新",
    ),
]


def make_items(rows: list[tuple[str, str, str]], prefix: str, lang: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{n:03d}",
            "question": question,
            "gold": {"source": source, "evidence": evidence},
            "split": SPLIT[source],
            "lang": lang,
        }
        for n, (source, question, evidence) in enumerate(rows, start=1)
    ]


def build() -> dict[str, list[dict[str, Any]]]:
    """The items of each set, by file name."""
    return {
        PARAPHRASE: make_items(PARAPHRASE_ITEMS, "pz", "zh"),
        EN_TO_ZH: make_items(EN_TO_ZH_ITEMS, "ez", "en"),
    }


def render(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n" for item in items)


def shared_tokens(question: str, evidence: str) -> set[str]:
    """The BM25 tokens of two or more characters that the question and the evidence share."""
    from assistant.knowledge.store import tokenize

    def content(text: str) -> set[str]:
        return {token for token in tokenize(text) if len(token) >= 2}

    return content(question) & content(evidence)


def source_chunks(source: str) -> list[str]:
    """The chunks the knowledge base makes of a demo file at the default chunking."""
    from assistant.knowledge.ingest import chunk_file

    chunks, _ = chunk_file((KB / source).read_bytes(), Path(source).suffix, CHUNK_SIZE, CHUNK_OVERLAP)
    return [chunk.text for chunk in chunks]


def check_items(name: str, items: list[dict[str, Any]]) -> list[str]:
    """Every broken rule, one line each (empty when the set is sound)."""
    problems: list[str] = []
    seen: set[str] = set()
    for item in items:
        where = f"{name} {item['id']}"
        if item["id"] in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(item["id"])
        source, evidence = item["gold"]["source"], item["gold"]["evidence"]
        low, high = EVIDENCE_CHARS
        if not low <= len(evidence) <= high:
            problems.append(f"{where}: evidence is {len(evidence)} characters, not {low}-{high}")
        if evidence not in (KB / source).read_text(encoding="utf-8"):
            problems.append(f"{where}: evidence is not in {source}: {evidence!r}")
        elif not any(evidence in chunk for chunk in source_chunks(source)):
            problems.append(f"{where}: evidence spans two chunks of {source}")
        if item["lang"] == "zh":
            shared = shared_tokens(item["question"], evidence)
            if len(shared) > MAX_SHARED:
                problems.append(f"{where}: question shares {sorted(shared)} with its evidence")
        elif _CJK.search(item["question"]):
            problems.append(f"{where}: CJK in an English question")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="verify the files are current and the rules hold"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # run as a script: import the project's tokenizer and chunker
    problems: list[str] = []
    for name, items in build().items():
        problems += check_items(name, items)
        path = HERE / name
        text = render(items)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                problems.append(f"{path.name} is out of date: run python datasets/retrieval/build.py")
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path} ({len(items)} items)")
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
