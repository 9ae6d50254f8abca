"""Write ``calibration.jsonl``: a small labelled set for checking an LLM judge.

Each item is a question, the contexts a retriever returned, an answer and a reference, with a
person's verdict per judged metric (``labels``):

- ``faithfulness``: the share of the answer's claims that the contexts support (1, 0.5, 0;
  ``null`` for an answer that makes no claim, "I don't know");
- ``answer_relevancy``: does the answer address the question (1) or not (0: noncommittal or
  about something else); a wrong answer to the question is still relevant;
- ``context_precision``: the average precision of the contexts, each useful for reaching the
  reference or not (``useful`` lists the person's per-context verdicts);
- ``context_recall``: the share of the reference's claims the contexts contain;
- ``answer_correctness``: the share of the reference the answer gets right, wrong claims
  counting against it (1, 0.5, 0).

Ten scenarios (five Chinese, five English; invented company policies, two facts each) are
crossed with answer types, so that each metric sees every verdict and the metrics disagree
with each other where they should: a correct answer the contexts do not support
(faithfulness 0, correctness 1), an off-topic answer the contexts do support (faithfulness 1,
relevancy 0). Two short answers ("5天", "No, digital gift cards cannot be refunded.") are the
cases a small judge got wrong.

Run ``python datasets/judge/build.py``; the output is deterministic (tests rebuild it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "calibration.jsonl"

# id, lang, question, reference, full context, partial context (first fact only),
# irrelevant context, answers: correct, contradicting, half right, and the fourth kind.
SCENARIOS: list[dict[str, Any]] = [
    {
        "id": "leave", "lang": "zh",
        "question": "入职满一年的员工有几天年假？未休完的年假怎么处理？",
        "reference": "每年5天带薪年假，未休完的可以顺延到次年3月31日。",
        "full": "员工手册第4章：入职满一年的员工每年享有5天带薪年假，满五年增至10天。当年未休完的年假可顺延至次年3月31日，逾期作废。",
        "partial": "员工手册第4章：入职满一年的员工每年享有5天带薪年假，满五年增至10天。",
        "irrelevant": "报销制度：差旅住宿标准为一线城市每晚不超过600元，其他城市每晚不超过400元。",
        "correct": "5天带薪年假，没休完的可以顺延到次年3月31日。",
        "wrong": "每年有15天带薪年假，未休完的年假会折算成工资发放。",
        "half": "每年5天带薪年假；未休完的年假可以折算成现金。",
        "fourth": ("noncommittal", "抱歉，我不清楚，请咨询人力资源部。"),
    },
    {
        "id": "giftcard", "lang": "zh",
        "question": "电子礼品卡可以退款吗？过期后还能用吗？",
        "reference": "不可以退款；有效期三年，过期后余额作废。",
        "full": "礼品卡条款：电子礼品卡一经售出，不予退款或兑换现金。礼品卡自购买之日起三年内有效，过期后余额自动作废。",
        "partial": "礼品卡条款：电子礼品卡一经售出，不予退款或兑换现金。",
        "irrelevant": "配送说明：订单满99元包邮，偏远地区另收10元运费。",
        "correct": "不能退款。有效期三年，过期后余额作废。",
        "wrong": "可以退款，七天内申请即可全额退回；礼品卡永久有效。",
        "half": "不能退款，但过期后可以联系客服延期一年。",
        "fourth": ("off_topic", "订单满99元包邮，偏远地区另收10元运费。"),
        "unsupported_correct": True,
    },
    {
        "id": "membership", "lang": "zh",
        "question": "累计消费多少可以升为金卡会员？金卡有什么折扣？",
        "reference": "累计消费满2400元升为金卡会员，金卡享受九五折。",
        "full": "会员规则：普通会员累计消费满2400元自动升为金卡会员。金卡会员购物享受九五折，并可每月领取一张免运费券。",
        "partial": "会员规则：普通会员累计消费满2400元自动升为金卡会员。",
        "irrelevant": "门店营业时间：周一至周五9:00-21:00，周末10:00-22:00。",
        "correct": "满2400元升金卡，享受九五折。",
        "wrong": "累计消费满5000元才能升金卡，金卡打八折。",
        "half": "消费满2400元升金卡，金卡会员打八折。",
        "fourth": ("noncommittal", "这个问题我无法回答。"),
    },
    {
        "id": "returns", "lang": "zh",
        "question": "收到商品后多少天内可以无理由退货？运费谁承担？",
        "reference": "签收后7天内可无理由退货，非质量问题的退货运费由买家承担。",
        "full": "售后政策：自签收之日起7天内，商品完好可申请无理由退货。非质量问题的退货运费由买家承担，质量问题由商家承担运费。",
        "partial": "售后政策：自签收之日起7天内，商品完好可申请无理由退货。",
        "irrelevant": "发票说明：电子发票在订单完成后24小时内发送至注册邮箱。",
        "correct": "7天。运费一般由买家出，质量问题的话商家出。",
        "wrong": "30天内都可以退货，运费全部由商家承担。",
        "half": "签收后7天内可以无理由退货，运费由快递公司承担。",
        "fourth": ("off_topic", "电子发票会在订单完成后24小时内发到您的注册邮箱。"),
        "unsupported_correct": True,
    },
    {
        "id": "travel", "lang": "zh",
        "question": "出差住宿报销标准是多少？需要多久内提交报销？",
        "reference": "一线城市每晚不超过600元、其他城市不超过400元；出差结束后30天内提交。",
        "full": "差旅制度：住宿报销标准为一线城市每晚不超过600元，其他城市每晚不超过400元。报销单须在出差结束后30天内提交。",
        "partial": "差旅制度：住宿报销标准为一线城市每晚不超过600元，其他城市每晚不超过400元。",
        "irrelevant": "年假制度：入职满一年的员工每年享有5天带薪年假。",
        "correct": "一线城市每晚600元以内，其他城市400元以内，出差回来30天内交报销单。",
        "wrong": "住宿没有上限，实报实销，一年内提交都可以。",
        "half": "一线城市每晚不超过600元，其他城市不超过400元；报销单要在7天内提交。",
        "fourth": ("noncommittal", "请查阅公司内网或咨询财务。"),
    },
    {
        "id": "giftcard", "lang": "en",
        "question": "Can digital gift cards be refunded, and do they expire?",
        "reference": "No, digital gift cards cannot be refunded; they are valid for three years, after which the balance is void.",
        "full": "Gift card terms: digital gift cards cannot be refunded or exchanged for cash once sold. A gift card is valid for three years from purchase; after that the remaining balance is void.",
        "partial": "Gift card terms: digital gift cards cannot be refunded or exchanged for cash once sold.",
        "irrelevant": "Shipping: orders over $50 ship free; remote areas pay a $10 surcharge.",
        "correct": "No, they cannot be refunded. They expire three years after purchase, and the balance is then void.",
        "wrong": "Yes, you can get a full refund within 14 days, and gift cards never expire.",
        "half": "No, digital gift cards cannot be refunded, but support can extend an expired card by a year.",
        "fourth": ("off_topic", "Orders over $50 ship for free; remote areas pay a $10 surcharge."),
    },
    {
        "id": "passwords", "lang": "en",
        "question": "How often must employees change their password, and how long must it be?",
        "reference": "Every 90 days; at least 12 characters.",
        "full": "IT security policy: passwords must be at least 12 characters long and must be changed every 90 days. The last five passwords cannot be reused.",
        "partial": "IT security policy: passwords must be changed every 90 days.",
        "irrelevant": "Office hours: the front desk is staffed from 8 am to 6 pm on weekdays.",
        "correct": "Every 90 days, and it needs at least 12 characters.",
        "wrong": "Once a year, and 6 characters are enough.",
        "half": "You change it every 90 days; it must be at least 8 characters.",
        "fourth": ("noncommittal", "I'm not sure about that, please ask IT."),
        "unsupported_correct": True,
    },
    {
        "id": "parental", "lang": "en",
        "question": "How many weeks of paid parental leave do employees get, and when can it be taken?",
        "reference": "16 weeks of paid parental leave, taken within the first year after the birth or adoption.",
        "full": "Benefits handbook: employees receive 16 weeks of paid parental leave, which must be taken within the first year after the birth or adoption of a child.",
        "partial": "Benefits handbook: employees receive 16 weeks of paid parental leave.",
        "irrelevant": "Expense policy: meals during travel are reimbursed up to $60 per day.",
        "correct": "16 weeks, paid, taken within the first year after the birth or adoption.",
        "wrong": "4 weeks of unpaid leave, which can be taken any time before the child turns five.",
        "half": "16 weeks of paid leave, and it can be taken any time before the child turns five.",
        "fourth": ("off_topic", "Meals during travel are reimbursed up to $60 per day."),
    },
    {
        "id": "warranty", "lang": "en",
        "question": "How long is the laptop warranty and what does it cover?",
        "reference": "Two years; it covers hardware defects but not accidental damage.",
        "full": "Warranty: every laptop carries a two-year warranty covering hardware defects. Accidental damage such as drops or spills is not covered.",
        "partial": "Warranty: every laptop carries a two-year warranty.",
        "irrelevant": "Returns: unopened items can be returned within 30 days for a full refund.",
        "correct": "Two years, covering hardware defects; accidental damage isn't included.",
        "wrong": "Five years, and it covers everything including spills and drops.",
        "half": "Two years, and it includes accidental damage like drops.",
        "fourth": ("noncommittal", "I cannot answer that question."),
        "unsupported_correct": True,
    },
    {
        "id": "rooms", "lang": "en",
        "question": "How far in advance can meeting rooms be booked, and for how long?",
        "reference": "Up to 14 days in advance, for at most 4 hours per booking.",
        "full": "Facilities: meeting rooms can be booked up to 14 days in advance. A single booking may last at most 4 hours.",
        "partial": "Facilities: meeting rooms can be booked up to 14 days in advance.",
        "irrelevant": "Parking: employee parking permits are renewed every January.",
        "correct": "Up to 14 days ahead, for a maximum of 4 hours each time.",
        "wrong": "Up to a year in advance, with no time limit.",
        "half": "You can book 14 days ahead, for up to 8 hours.",
        "fourth": ("off_topic", "Employee parking permits are renewed every January."),
    },
]  # fmt: skip

# Short answers a small judge scored 0 although the context states them (issue 16).
SHORT: list[dict[str, Any]] = [
    {
        "id": "zh-leave-short", "lang": "zh", "kind": "short",
        "user_input": "入职满一年的员工每年有几天带薪年假？",
        "retrieved_contexts": [SCENARIOS[0]["full"]],
        "response": "5天",
        "reference": "5天",
        "useful": [1],
        "labels": {"faithfulness": 1.0, "answer_relevancy": 1.0, "context_recall": 1.0, "answer_correctness": 1.0},
    },
    {
        "id": "en-giftcard-short", "lang": "en", "kind": "short",
        "user_input": "Can digital gift cards be refunded?",
        "retrieved_contexts": [SCENARIOS[5]["full"], SCENARIOS[5]["irrelevant"]],
        "response": "No, digital gift cards cannot be refunded.",
        "reference": "No, digital gift cards cannot be refunded.",
        "useful": [1, 0],
        "labels": {"faithfulness": 1.0, "answer_relevancy": 1.0, "context_recall": 1.0, "answer_correctness": 1.0},
    },
]  # fmt: skip


def average_precision(useful: list[int]) -> float:
    """ragas' context precision on a person's per-context verdicts: the mean of precision@k
    over the useful positions k (0 when none is useful)."""
    hits, total = 0, 0.0
    for k, flag in enumerate(useful, start=1):
        if flag:
            hits += 1
            total += hits / k
    return total / hits if hits else 0.0


def scenario_items(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer types of one scenario: (kind, contexts, useful, answer, labels)."""
    full, partial, irrelevant = s["full"], s["partial"], s["irrelevant"]
    fourth_kind, fourth_answer = s["fourth"]
    rows: list[tuple[str, list[str], list[int], str, dict[str, float | None]]] = [
        # right and grounded: the useful context first
        ("correct", [full, irrelevant], [1, 0], s["correct"],
         {"faithfulness": 1.0, "answer_relevancy": 1.0, "context_recall": 1.0, "answer_correctness": 1.0}),
        # wrong on both facts, contradicting the context (the useful one second)
        ("wrong", [irrelevant, full], [0, 1], s["wrong"],
         {"faithfulness": 0.0, "answer_relevancy": 1.0, "context_recall": 1.0, "answer_correctness": 0.0}),
        # first fact right and grounded, second invented; the context holds only the first
        ("half", [partial], [1], s["half"],
         {"faithfulness": 0.5, "answer_relevancy": 1.0, "context_recall": 0.5, "answer_correctness": 0.5}),
    ]  # fmt: skip
    if fourth_kind == "noncommittal":
        rows.append((fourth_kind, [irrelevant], [0], fourth_answer,
                     {"faithfulness": None, "answer_relevancy": 0.0, "context_recall": 0.0,
                      "answer_correctness": 0.0}))  # fmt: skip
    else:  # about something else, and exactly what the (irrelevant) context says
        rows.append((fourth_kind, [irrelevant], [0], fourth_answer,
                     {"faithfulness": 1.0, "answer_relevancy": 0.0, "context_recall": 0.0,
                      "answer_correctness": 0.0}))  # fmt: skip
    if s.get("unsupported_correct"):
        # the right answer, but nothing retrieved says so
        rows.append(("unsupported_correct", [irrelevant], [0], s["correct"],
                     {"faithfulness": 0.0, "answer_relevancy": 1.0, "context_recall": 0.0,
                      "answer_correctness": 1.0}))  # fmt: skip
    items = []
    for kind, contexts, useful, answer, labels in rows:
        items.append(
            {
                "id": f"{s['lang']}-{s['id']}-{kind}",
                "lang": s["lang"],
                "kind": kind,
                "user_input": s["question"],
                "retrieved_contexts": contexts,
                "response": answer,
                "reference": s["reference"],
                "useful": useful,
                "labels": labels,
            }
        )
    return items


def build() -> list[dict[str, Any]]:
    items = [item for s in SCENARIOS for item in scenario_items(s)] + [dict(i) for i in SHORT]
    for item in items:
        labels = dict(item["labels"])
        labels["context_precision"] = average_precision(item["useful"])
        item["labels"] = {k: labels[k] for k in sorted(labels)}
    return items


def render(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n" for item in items)


def main() -> None:
    OUT.write_text(render(build()), encoding="utf-8")
    print(f"wrote {OUT} ({len(build())} items)")


if __name__ == "__main__":
    main()
