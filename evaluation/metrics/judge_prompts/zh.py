"""Chinese versions of ragas 0.4.3's judge prompts, for items written in Chinese.

Each class subclasses the ragas prompt it replaces, so the input and output models (and the
JSON schema the reply must match) stay ragas' own; only the instruction, the few-shot
examples and the frame around them are Chinese. Field names stay English: they are the JSON
keys ragas parses. The examples are written for this module, not translated from ragas'
Einstein examples, and they show what a small judge gets wrong most: a one-word or
one-number answer is still a statement (combined with its question), and a statement the
context states in other words is supported.

Importing this module imports ragas; ``judge_prompts`` imports it on first use.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from ragas.metrics.collections.answer_correctness import util as correctness
from ragas.metrics.collections.answer_relevancy import util as relevancy
from ragas.metrics.collections.context_precision import util as precision
from ragas.metrics.collections.context_recall import util as recall
from ragas.metrics.collections.faithfulness import util as faithfulness
from ragas.prompt.metrics.base_prompt import BasePrompt


class ChineseFrame:
    """ragas' prompt layout (instruction, schema, examples, input) with the framing in Chinese."""

    language = "chinese"
    instruction: str
    examples: Any
    output_model: Any

    def to_string(self, data: BaseModel) -> str:
        schema = json.dumps(self.output_model.model_json_schema(), ensure_ascii=False)
        return (
            f"{self.instruction}\n"
            f"只输出一个符合下面 JSON Schema 的 JSON 对象：\n{schema}\n"
            "字符串一律用双引号，不用单引号；字符串里的双引号用反斜杠转义。\n\n"
            f"{self._generate_examples()}\n"
            "-----------------------------\n\n"
            "现在对下面的输入做同样的事\n"
            f"输入: {data.model_dump_json(indent=4, exclude_none=True)}\n"
            "输出: "
        )

    def _generate_examples(self) -> str:
        if not self.examples:
            return ""
        shown = [
            f"示例 {index}\n输入: {given.model_dump_json(indent=4)}\n输出: {wanted.model_dump_json(indent=4)}"
            for index, (given, wanted) in enumerate(self.examples, start=1)
        ]
        return "--------示例-----------\n" + "\n\n".join(shown)


# ---- statements (faithfulness and answer correctness share the text, not the classes) --------
_STATEMENTS_INSTRUCTION = (
    "给定一个问题和一个回答，分析回答中的每个句子，把每个句子拆成一个或多个可以独立理解的陈述。"
    "陈述中不要使用代词（他、她、它、这、该等），写出所指的对象。"
    "回答很短时（只有一个数字、日期或词语），结合问题把它写成一个完整的陈述。陈述用中文。"
)
_STATEMENT_EXAMPLES: list[tuple[dict[str, Any], list[str]]] = [
    (
        {
            "question": "鲁迅是谁？他最著名的作品是什么？",
            "answer": "他是中国现代作家，原名周树人。他最著名的作品是《阿Q正传》和《狂人日记》。",
        },
        [
            "鲁迅是中国现代作家。",
            "鲁迅原名周树人。",
            "鲁迅最著名的作品包括《阿Q正传》。",
            "鲁迅最著名的作品包括《狂人日记》。",
        ],
    ),
    ({"question": "公司的年度体检一般安排在几月？", "answer": "3月"}, ["公司的年度体检一般安排在3月。"]),
]


def _statement_examples(module: Any) -> list[tuple[Any, Any]]:
    return [
        (module.StatementGeneratorInput(**given), module.StatementGeneratorOutput(statements=wanted))
        for given, wanted in _STATEMENT_EXAMPLES
    ]


class FaithfulnessStatements(ChineseFrame, faithfulness.StatementGeneratorPrompt):
    instruction = _STATEMENTS_INSTRUCTION
    examples = _statement_examples(faithfulness)


class CorrectnessStatements(ChineseFrame, correctness.StatementGeneratorPrompt):
    instruction = _STATEMENTS_INSTRUCTION
    examples = _statement_examples(correctness)


# ---- faithfulness: verdicts ----------------------------------------------------------------
def _verdict(statement: str, reason: str, verdict: int) -> Any:
    return faithfulness.StatementFaithfulnessAnswer(statement=statement, reason=reason, verdict=verdict)


class FaithfulnessVerdicts(ChineseFrame, faithfulness.NLIStatementPrompt):
    instruction = (
        "你的任务是根据给定的上下文判断一系列陈述是否忠实于上下文。对每个陈述，如果能从上下文直接推断出来"
        "（上下文用别的说法写了同一件事也算），verdict 给 1；如果不能从上下文直接推断出来，verdict 给 0。"
        "statement 逐字抄写原陈述，reason 用中文简要说明理由。"
    )
    examples = [  # noqa: RUF012 (ragas reads the class attribute)
        (
            faithfulness.NLIStatementInput(
                context="小李是某大学计算机专业的学生。这学期他选了数据结构、算法和数据库三门课。"
                "他学习很用功，经常在图书馆待到很晚。",
                statements=[
                    "小李主修生物学。",
                    "小李这学期选了人工智能课。",
                    "小李是一个勤奋的学生。",
                    "小李这学期在学数据库。",
                ],
            ),
            faithfulness.NLIStatementOutput(
                statements=[
                    _verdict("小李主修生物学。", "上下文说小李是计算机专业的学生，不是生物学。", 0),
                    _verdict("小李这学期选了人工智能课。", "上下文列出的三门课里没有人工智能。", 0),
                    _verdict("小李是一个勤奋的学生。", "上下文说他学习很用功，经常在图书馆待到很晚。", 1),
                    _verdict("小李这学期在学数据库。", "上下文说他这学期选了数据库课。", 1),
                ]
            ),
        )
    ]


# ---- answer relevancy ------------------------------------------------------------------------
class AnswerRelevance(ChineseFrame, relevancy.AnswerRelevancePrompt):
    instruction = (
        "根据给定的回答，用中文写出这个回答所回答的问题（用户会怎样问，而不是照抄回答），"
        "并判断回答是否含糊其辞。"
        "回答含糊其辞（回避、模糊或不确定）时 noncommittal 给 1，回答有实际内容时给 0。"
        "含糊其辞的例子：“我不知道”“我不确定”“要看情况”。"
    )
    examples = [  # noqa: RUF012 (ragas reads the class attribute)
        (
            relevancy.AnswerRelevanceInput(response="鲁迅原名周树人。"),
            relevancy.AnswerRelevanceOutput(question="鲁迅的原名是什么？", noncommittal=0),
        ),
        (
            relevancy.AnswerRelevanceInput(response="中国的首都是北京，城里有故宫、天坛等许多古迹。"),
            relevancy.AnswerRelevanceOutput(question="中国的首都是哪里？", noncommittal=0),
        ),
        (
            relevancy.AnswerRelevanceInput(response="可以，未使用的优惠券在有效期内可以转赠给好友。"),
            relevancy.AnswerRelevanceOutput(question="未使用的优惠券可以转赠给好友吗？", noncommittal=0),
        ),
        (
            relevancy.AnswerRelevanceInput(
                response="我不清楚2030年发布的那款手机有什么新功能，我的资料只到2024年。"
            ),
            relevancy.AnswerRelevanceOutput(question="2030年发布的那款手机有什么新功能？", noncommittal=1),
        ),
    ]


# ---- context precision -----------------------------------------------------------------------
_LU_XUN = (
    "鲁迅（1881年9月25日－1936年10月19日），原名周樟寿，后改名周树人，浙江绍兴人，"
    "中国现代文学的奠基人之一。1918年他发表了中国第一篇现代白话小说《狂人日记》。"
)
_ANDES = "安第斯山脉是世界上最长的大陆山脉，位于南美洲，横跨七个国家，有许多西半球最高的山峰。"


class ContextPrecision(ChineseFrame, precision.ContextPrecisionPrompt):
    instruction = (
        "给定问题、答案和上下文，判断这段上下文对于得出给定答案是否有用。"
        "上下文写了答案里的事实（说法不同也算；上下文还写了别的内容不影响）时有用，verdict 给 1；"
        "上下文没有写答案里的事实时没用，给 0。reason 用中文说明理由。以 JSON 输出。"
    )
    examples = [  # noqa: RUF012 (ragas reads the class attribute)
        (
            precision.ContextPrecisionInput(
                question="鲁迅的原名是什么？", context=_LU_XUN, answer="鲁迅原名周树人。"
            ),
            precision.ContextPrecisionOutput(
                reason="上下文写明鲁迅后改名周树人，正是答案里的事实。", verdict=1
            ),
        ),
        (
            precision.ContextPrecisionInput(
                question="世界上最高的山是哪座？", context=_ANDES, answer="珠穆朗玛峰。"
            ),
            precision.ContextPrecisionOutput(
                reason="上下文讲的是安第斯山脉，没有提到珠穆朗玛峰。", verdict=0
            ),
        ),
    ]


# ---- context recall --------------------------------------------------------------------------
def _attributed(statement: str, reason: str, attributed: int) -> Any:
    return recall.ContextRecallClassification(statement=statement, reason=reason, attributed=attributed)


class ContextRecall(ChineseFrame, recall.ContextRecallPrompt):
    instruction = (
        "给定上下文和答案，分析答案中的每个陈述，判断该陈述能否归因于给定的上下文。"
        "只用二元分类：能归因于上下文 attributed 给 1，不能给 0。对每个陈述用中文给出理由。"
    )
    examples = [  # noqa: RUF012 (ragas reads the class attribute)
        (
            recall.ContextRecallInput(
                question="你能介绍一下鲁迅吗？",
                context=_LU_XUN,
                answer="鲁迅原名周树人，是浙江绍兴人。1918年他发表了《狂人日记》。他年轻时曾在日本学医。",
            ),
            recall.ContextRecallOutput(
                classifications=[
                    _attributed(
                        "鲁迅原名周树人，是浙江绍兴人。", "上下文写明鲁迅改名周树人，是浙江绍兴人。", 1
                    ),
                    _attributed("1918年鲁迅发表了《狂人日记》。", "上下文提到1918年发表《狂人日记》。", 1),
                    _attributed("鲁迅年轻时曾在日本学医。", "上下文没有提到鲁迅在日本学医。", 0),
                ]
            ),
        ),
        (
            recall.ContextRecallInput(
                question="世界上最高的山是哪座？", context=_ANDES, answer="珠穆朗玛峰。"
            ),
            recall.ContextRecallOutput(
                classifications=[
                    _attributed("珠穆朗玛峰。", "上下文讲的是安第斯山脉，没有提到珠穆朗玛峰。", 0)
                ]
            ),
        ),
    ]


# ---- answer correctness: TP / FP / FN ----------------------------------------------------------
def _why(statement: str, reason: str) -> Any:
    return correctness.StatementsWithReason(statement=statement, reason=reason)


class CorrectnessClassifier(ChineseFrame, correctness.CorrectnessClassifierPrompt):
    instruction = (
        "给定标准答案（ground_truth）的陈述和回答（answer）的陈述，把每个陈述归入下面一类："
        "TP（真阳性）：回答里有、并且被标准答案中一个或多个陈述直接支持的陈述；"
        "FP（假阳性）：回答里有、但没有被标准答案中任何陈述直接支持的陈述；"
        "FN（假阴性）：标准答案里有、但回答里没有的陈述。每个陈述只能属于一类。对每个分类用中文给出理由。"
    )
    examples = [  # noqa: RUF012 (ragas reads the class attribute)
        (
            correctness.CorrectnessClassifierInput(
                question="太阳靠什么发光？它的主要作用是什么？",
                answer=["太阳靠核裂变发光，和地球上的核电站一样。", "太阳的主要作用是为太阳系提供光。"],
                ground_truth=[
                    "太阳靠核聚变发光，氢原子聚变成氦。",
                    "太阳核心的聚变释放出巨大的能量。",
                    "太阳提供的光和热是地球生命所必需的。",
                ],
            ),
            correctness.ClassificationWithReason(
                TP=[_why("太阳的主要作用是为太阳系提供光。", "标准答案说太阳提供光和热，支持这一点。")],
                FP=[_why("太阳靠核裂变发光，和地球上的核电站一样。", "与标准答案矛盾：太阳靠的是核聚变。")],
                FN=[
                    _why("太阳靠核聚变发光，氢原子聚变成氦。", "回答没有说到核聚变。"),
                    _why("太阳核心的聚变释放出巨大的能量。", "回答没有提到聚变释放的能量。"),
                    _why("太阳提供的光和热是地球生命所必需的。", "回答只说了光，没有说热和它对生命的意义。"),
                ],
            ),
        ),
        (
            correctness.CorrectnessClassifierInput(
                question="水的沸点是多少？",
                answer=["在海平面上水的沸点是100摄氏度。"],
                ground_truth=["在海平面上水的沸点是100摄氏度（212华氏度）。", "水的沸点随海拔高度变化。"],
            ),
            correctness.ClassificationWithReason(
                TP=[_why("在海平面上水的沸点是100摄氏度。", "标准答案直接写了海平面上沸点是100摄氏度。")],
                FP=[],
                FN=[_why("水的沸点随海拔高度变化。", "回答没有提到沸点随海拔变化。")],
            ),
        ),
    ]


# ragas' prompt class -> its Chinese version.
CHINESE: dict[type[BasePrompt[Any, Any]], type[BasePrompt[Any, Any]]] = {
    faithfulness.StatementGeneratorPrompt: FaithfulnessStatements,
    faithfulness.NLIStatementPrompt: FaithfulnessVerdicts,
    relevancy.AnswerRelevancePrompt: AnswerRelevance,
    precision.ContextPrecisionPrompt: ContextPrecision,
    recall.ContextRecallPrompt: ContextRecall,
    correctness.StatementGeneratorPrompt: CorrectnessStatements,
    correctness.CorrectnessClassifierPrompt: CorrectnessClassifier,
}
