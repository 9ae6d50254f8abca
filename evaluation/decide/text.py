"""Plain words for a decision, in English or Chinese.

Reasons are stored as codes with parameters; ``say(reason, lang)`` fills the template of that
language. Numbers are shown with 3 decimals (p-values as ``p=0.012``), lists joined.
"""

from __future__ import annotations

from typing import Any

from evaluation.decide.curve import describe
from evaluation.decide.result import MET, NOT_CONFIRMED, NOT_MET, TIE, Decision, Reason
from evaluation.decide.text_search import search_lines

LANGS = ("en", "zh")

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "no_scores": "{metric}: no item could be scored",
        "nothing_measured": "no target applies to this rung ({metrics} are not measured for it)",
        "mean_misses": "{metric} = {mean} misses the target {op} {threshold}",
        "bound_misses": "{metric} = {mean}, but its CI {ci} does not clear {op} {threshold}: not sure enough",
        "cost_unknown": "the cost is unknown ({source}), so the cost limit cannot be checked",
        "cost_over": "costs {cost} {currency} per 1,000 questions, over the limit of {limit}",
        "latency_over": "single-request p95 latency {p95} s is over the limit of {limit} s",
        "forgetting": "fine-tuning cost general ability: {metric} dropped by {drop} (allowed: {max_drop})",
        "none_meets": "No rung meets every target and limit (tried: {rungs}).",
        "closest": "The closest is {rung} (the best mean on the targets).",
        "closest_equal": "The closest is {rung}: {best} has the best mean on the targets, but no target and "
        "no other reported metric separates the cheaper {rung} from it.",
        "first_meets": "{rung} is the first rung, in order of cost, that meets every target and limit.",
        "tie": "{winner} meets the target, but it is not significantly better than the cheaper {cheaper} "
        "({metric}: difference {diff}, {p}, n={n}; significance level {alpha}). The data cannot separate "
        "them, so Ladder does not call a winner: it recommends the cheaper {cheaper}, whose mean already "
        "clears the target; more items would settle it.",
        "better_than": "{rung} is significantly better than {other} ({metric}: {diff}, {p}).",
        "test_misses": "On the held-out test split {rung} misses: {misses}. The dev result did not hold.",
        "test_mean_only": "On the held-out test split {rung} clears the targets on the mean, but the CI is "
        "too wide to be sure.",
        "test_confirms": "The held-out test split confirms {rung}.",
        "forgetting_unchecked": "Whether {rung} kept the base model's general ability was not checked: the "
        "decision has no general suite (set suites.general to one the base model does well on).",
        "route_offered_failed": "The fine-tune failed the forgetting check, so Ladder tried {rung}: one "
        "model in memory, the adapter for in-domain questions and the base alone for the rest.",
        "route_offered_near": "The fine-tune nearly failed the forgetting check (it used at least half the "
        "allowed drop), so Ladder tried {rung}: one model in memory, the adapter for in-domain questions "
        "and the base alone for the rest.",
        "route_routing_within": "{rung}: {metric} = {route} on dev, within the fine-tune's CI {ci} "
        "(fine-tune {finetune}).",
        "route_routing_outside": "{rung}: {metric} = {route} on dev, outside the fine-tune's CI {ci} "
        "(fine-tune {finetune}).",
        "route_general_within": "{rung}: {general_metric} = {route_general} on the general suite, within "
        "the base's CI [{base_low}, {base_high}] (base {base}, fine-tune {finetune_general}).",
        "route_general_outside": "{rung}: {general_metric} = {route_general} on the general suite, outside "
        "the base's CI [{base_low}, {base_high}] (base {base}, fine-tune {finetune_general}).",
        "route_router": "The router of {rung} ({embedder}, k={k}, threshold {threshold}) sent "
        "{accuracy_in_domain} of the {in_domain_items} dev questions to the adapter and kept "
        "{accuracy_general} of the {general_items} general questions on the base (held-out balanced "
        "accuracy {validation_balanced_accuracy}); it costs {router_ms} ms per question (p95 "
        "{router_ms_p95}, each question routed alone).",
        "ci_straddles": "{rung}: the {metric} CI {ci} contains the threshold {threshold} with n={n}: "
        "the data is too small to decide (about {needed} items would separate them).",
        "ci_straddles_close": "{rung}: {metric} = {mean} is only {margin} from the threshold {threshold} "
        "(CI {ci}, n={n}): a difference too small to matter; settling it would take about {needed} items.",
        "ci_straddles_close_on": "{rung}: {metric} = {mean} sits on the threshold {threshold} (CI {ci}, "
        "n={n}): whether it meets is a difference too small to matter.",
        "kb_missing_facts": "{rung}: retrieval finds the reference passage for only {hit} of questions "
        "({metric} < {low}): the facts are missing from the knowledge base, or cannot be found.",
        "rag_lifts_short": "{rung} lifts {metric} over {base} by {diff} ({p}): the model lacks facts the "
        "knowledge base gives, yet the target is missed. Without retrieval scores per item (reference "
        "passages in the suite) Ladder cannot tell whether retrieval or reading falls short.",
        "off_format": "{rung}: {rate} of answers are off format (not one of the labels, unparseable, or "
        "failing the verifier), e.g. {examples}.",
        "format_persists": "Off-format answers persist across {rungs}: no prompt fixes the behaviour.",
        "reasoning_lifts_short": "{rung} lifts {metric} over {base} by {diff} ({p}), but not enough: a "
        "reasoning gap.",
        "rag_table": "{rung}, item by item (right: {metric} {right_if}; retrieved: {hit_metric}): passage "
        "retrieved and answer right {retrieved_right}; retrieved but wrong {retrieved_wrong} (e.g. "
        "{retrieved_wrong_examples}); not retrieved and right {missed_right}; not retrieved and wrong "
        "{missed_wrong} (e.g. {missed_wrong_examples}).",
        "reading_gap": "{read} of {rung}'s {wrong} wrong answers had the passage in front of the model: it "
        "fails to read it, a reading gap. What helps: a stronger model, or fine-tuning on questions with "
        "their retrieved passages (the finetune+rag rung).",
        "retrieval_gap": "{missed} of {rung}'s {wrong} wrong answers never got the passage: a retrieval gap. "
        "What helps: chunking, the embedder, k, fusion (or the facts are not in the knowledge base).",
        "format_fix_lifts": "{rung} lifts {metric} over {base} by {diff} ({p}), but {fixed} of the {gained} "
        "items it gained were off format in {base}: it fixed the format (the label, the option), not the "
        "reasoning. A format gap: state the output format, constrain it, or fine-tune on the format.",
        "beats_no_baseline": "No rung does better than {baseline} on {metric} ({chance}), so none is "
        "close: the gaps below say what would help.",
        "at_chance": "{rung}: {metric} = {mean} {ci} is no better than chance ({chance}: an option "
        "picked at random; n={n}). The model does not know this, and no prompt will fix it.",
        "at_majority": "{rung}: {metric} = {mean} {ci} is no better than always answering the commonest "
        "label ({chance} of the items; n={n}). The model has not learned the labels.",
        "remedy_larger_model": "Way out: a larger model (name it as a rung's `model`; `ladder models list` "
        "shows the local packs). Cost: answer time and cost per question grow roughly with its parameter "
        "count; {rung} now costs {cost} {currency} per 1,000 questions ({tokens} tokens per question).",
        "remedy_knowledge_source": "Way out: a knowledge source for RAG (set `kb` to texts that cover the "
        "subject). Cost: gathering those texts and indexing them once, then about {extra_tokens} more "
        "prompt tokens per question.",
        "remedy_knowledge_source_unknown": "Way out: a knowledge source for RAG (set `kb` to texts that "
        "cover the subject). Cost: gathering those texts and indexing them once, then the retrieved "
        "passages in every prompt.",
        "remedy_better_kb": "Way out: a knowledge base that holds the facts: RAG ran and stayed at this "
        "level, so the texts in `kb` do not cover what is asked. Cost: gathering and indexing those texts.",
        "remedy_labelled_data": "Way out: labelled examples to fine-tune on (readiness asks for at least "
        "{min_examples}, {min_per_label} per label). Cost: collecting and labelling them, and the training "
        "time readiness estimates.",
        "remedy_more_data": "Way out: far more training data. Cost: fine-tuning has to teach the facts "
        "themselves, which takes examples covering what the questions ask (thousands, not the "
        "{min_examples} readiness asks for: that many teach the format, not the subject), and training "
        "time grows with every example.",
    },
    "zh": {
        "no_scores": "{metric}：没有任何题目能被评分",
        "nothing_measured": "没有适用于这一级的目标（{metrics} 无法对其测量）",
        "mean_misses": "{metric} = {mean}，未达到目标 {op} {threshold}",
        "bound_misses": "{metric} = {mean}，但置信区间 {ci} 未能稳定满足 {op} {threshold}：把握不够",
        "cost_unknown": "成本未知（{source}），无法检查成本上限",
        "cost_over": "每千个问题成本 {cost} {currency}，超过上限 {limit}",
        "latency_over": "单次请求 p95 延迟 {p95} 秒，超过上限 {limit} 秒",
        "forgetting": "微调损害了通用能力：{metric} 下降 {drop}（允许 {max_drop}）",
        "none_meets": "没有任何一级同时满足所有目标和限制（已尝试：{rungs}）。",
        "closest": "最接近的是 {rung}（目标指标均值最好）。",
        "closest_equal": "最接近的是 {rung}：{best} 的目标指标均值最好，但在任何目标和其他报告的指标上，"
        "更便宜的 {rung} 与它都没有显著差别。",
        "first_meets": "按成本排序，{rung} 是第一个满足所有目标和限制的一级。",
        "tie": "{winner} 达到了目标，但并不显著优于更便宜的 {cheaper}（{metric}：差值 {diff}，{p}，n={n}；"
        "显著性水平 {alpha}）。数据无法区分两者，Ladder 不判定胜者：推荐更便宜的 {cheaper}"
        "（其均值已达标）；更多题目可以给出定论。",
        "better_than": "{rung} 显著优于 {other}（{metric}：{diff}，{p}）。",
        "test_misses": "在留出的测试集上 {rung} 未达标：{misses}。开发集上的结果没有保持。",
        "test_mean_only": "在留出的测试集上 {rung} 的均值达标，但置信区间太宽，尚不能确定。",
        "test_confirms": "留出的测试集确认了 {rung}。",
        "forgetting_unchecked": "未检查 {rung} 是否保留了基础模型的通用能力：该决策没有通用能力测试集"
        "（请将 suites.general 设为基础模型表现良好的测试集）。",
        "route_offered_failed": "微调未通过遗忘检查，因此 Ladder 尝试了 {rung}："
        "内存中只有一个模型，领域内的问题交给适配器，其余问题只用基础模型。",
        "route_offered_near": "微调险些未通过遗忘检查（下降已达允许值的一半以上），"
        "因此 Ladder 尝试了 {rung}：内存中只有一个模型，领域内的问题交给适配器，其余问题只用基础模型。",
        "route_routing_within": "{rung}：开发集 {metric} = {route}，"
        "在微调模型的置信区间 {ci} 之内（微调 {finetune}）。",
        "route_routing_outside": "{rung}：开发集 {metric} = {route}，"
        "在微调模型的置信区间 {ci} 之外（微调 {finetune}）。",
        "route_general_within": "{rung}：通用能力测试集 {general_metric} = {route_general}，"
        "在基础模型的置信区间 [{base_low}, {base_high}] 之内（基础模型 {base}，微调 {finetune_general}）。",
        "route_general_outside": "{rung}：通用能力测试集 {general_metric} = {route_general}，"
        "在基础模型的置信区间 [{base_low}, {base_high}] 之外（基础模型 {base}，微调 {finetune_general}）。",
        "route_router": "{rung} 的路由器（{embedder}，k={k}，阈值 {threshold}）"
        "把 {in_domain_items} 道开发集问题中的 {accuracy_in_domain} 交给适配器，"
        "把 {general_items} 道通用问题中的 {accuracy_general} 留给基础模型"
        "（留出集平衡准确率 {validation_balanced_accuracy}）；"
        "每个问题耗时 {router_ms} 毫秒（p95 {router_ms_p95}，逐题单独路由）。",
        "ci_straddles": "{rung}：{metric} 的置信区间 {ci} 包含阈值 {threshold}（n={n}）：数据太少，无法判断"
        "（约需 {needed} 道题才能区分）。",
        "ci_straddles_close": "{rung}：{metric} = {mean}，与阈值 {threshold} 只差 {margin}"
        "（置信区间 {ci}，n={n}）："
        "差别小到无关紧要；要定论约需 {needed} 道题。",
        "ci_straddles_close_on": "{rung}：{metric} = {mean} 正好落在阈值 {threshold} 上"
        "（置信区间 {ci}，n={n}）："
        "是否达标只是无关紧要的差别。",
        "kb_missing_facts": "{rung}：检索只为 {hit} 的问题找到了参考段落（{metric} < {low}）："
        "知识库缺少这些事实，或无法检索到。",
        "rag_lifts_short": "{rung} 使 {metric} 比 {base} 提高 {diff}（{p}）：模型缺少知识库提供的事实，"
        "但仍未达标。"
        "没有逐题的检索评分（题集中的参考段落），Ladder 无法判断是检索还是阅读不足。",
        "off_format": "{rung}：{rate} 的回答格式不对（不在标签集合内、无法解析或未通过校验），"
        "例如 {examples}。",
        "format_persists": "在 {rungs} 中格式错误持续存在：提示词无法修正这种行为。",
        "reasoning_lifts_short": "{rung} 使 {metric} 比 {base} 提高 {diff}（{p}），但不够：这是推理差距。",
        "rag_table": "{rung} 逐题统计（答对：{metric} {right_if}；检索到：{hit_metric}）：检索到且答对 "
        "{retrieved_right}；检索到但答错 {retrieved_wrong}（例如 {retrieved_wrong_examples}）；"
        "未检索到但答对 {missed_right}；未检索到且答错 {missed_wrong}（例如 {missed_wrong_examples}）。",
        "reading_gap": "{rung} 的 {wrong} 个错误回答中有 {read} 个已检索到段落：模型没能读懂，这是阅读差距。"
        "有帮助的做法：更强的模型，或用带检索段落的问题做微调（finetune+rag 一级）。",
        "retrieval_gap": "{rung} 的 {wrong} 个错误回答中有 {missed} 个没有检索到段落：这是检索差距。"
        "有帮助的做法：调整分块、嵌入模型、k、融合方式（或知识库中没有这些事实）。",
        "format_fix_lifts": "{rung} 使 {metric} 比 {base} 提高 {diff}（{p}），但它多答对的 {gained} 道题中有 "
        "{fixed} 道在 {base} 中格式不对：它修正的是格式（标签、选项），不是推理。这是格式差距："
        "写明输出格式、加以约束，或针对格式做微调。",
        "beats_no_baseline": "没有任何一级在 {metric} 上好于{baseline}（{chance}），所以谈不上哪一级最接近："
        "下面的差距说明什么会有帮助。",
        "at_chance": "{rung}：{metric} = {mean} {ci} 不高于随机猜测的水平"
        "（{chance}：随机选一个选项；n={n}）。模型不具备这方面的知识，任何提示词都无法弥补。",
        "at_majority": "{rung}：{metric} = {mean} {ci} 不比总是回答最常见的标签更好"
        "（占题目的 {chance}；n={n}）。"
        "模型没有学会这些标签。",
        "remedy_larger_model": "出路：更大的模型（在某一级的 `model` 中指定；"
        "`ladder models list` 列出本地模型包）。"
        "代价：每题的回答时间和成本大致随参数量增长；"
        "{rung} 目前每千题成本 {cost} {currency}（每题 {tokens} 个词元）。",
        "remedy_knowledge_source": "出路：为 RAG 提供知识来源（把 `kb` 设为涵盖该学科的文本）。"
        "代价：收集这些文本并建立一次索引，"
        "之后每题约多 {extra_tokens} 个提示词元。",
        "remedy_knowledge_source_unknown": "出路：为 RAG 提供知识来源（把 `kb` 设为涵盖该学科的文本）。"
        "代价：收集这些文本并建立一次索引，之后每个提示都带上检索到的段落。",
        "remedy_better_kb": "出路：一个包含这些事实的知识库：RAG 已运行但仍停留在这一水平，"
        "说明 `kb` 中的文本没有涵盖所问内容。"
        "代价：收集并索引这些文本。",
        "remedy_labelled_data": "出路：用带标签的示例做微调（就绪检查要求至少 {min_examples} 个，每个标签 "
        "{min_per_label} 个）。代价：收集并标注这些示例，以及就绪检查估计的训练时间。",
        "remedy_more_data": "出路：多得多的训练数据。代价：微调必须教会事实本身，需要覆盖所问内容的示例"
        "（数以千计，而不是就绪检查要求的 {min_examples} 个：那么少只能教会格式，教不会学科），"
        "训练时间随示例数增长。",
    },
}

GAP_NAMES = {
    "en": {
        "knowledge": "Knowledge gap",
        "behaviour": "Behaviour / format gap",
        "reasoning": "Reasoning gap",
        "data_too_small": "Data too small to decide",
        "reading": "Reading gap",
        "retrieval": "Retrieval gap",
    },
    "zh": {
        "knowledge": "知识差距",
        "behaviour": "行为 / 格式差距",
        "reasoning": "推理差距",
        "data_too_small": "数据太少，无法判断",
        "reading": "阅读差距",
        "retrieval": "检索差距",
    },
}

HEADLINES = {
    "en": {
        MET: "Recommended: {rung}.",
        TIE: "Recommended: {rung} (a tie: the cheaper of two that cannot be separated).",
        NOT_MET: "No rung meets the target.",
        NOT_CONFIRMED: "{rung} met the target on dev, but the held-out test split did not confirm it.",
    },
    "zh": {
        MET: "推荐：{rung}。",
        TIE: "推荐：{rung}（平局：两者无法区分，取更便宜的一个）。",
        NOT_MET: "没有任何一级达到目标。",
        NOT_CONFIRMED: "{rung} 在开发集上达标，但留出的测试集没有确认。",
    },
}

NOTES_ZH = {
    "an earlier rung met the target": "更便宜的一级已达标",
    "no knowledge base: set `kb`": "没有知识库：请设置 `kb`",
    "no few-shot examples: set `examples`": "没有少样本示例：请设置 `examples`",
    "no training data configured": "未配置训练数据",
    "allow_finetune is off: recommended, not run": "allow_finetune 关闭：只推荐，不运行",
    "the training data is not ready (see readiness)": "训练数据尚未就绪（见就绪检查）",
    "over the time budget (finetune.max_minutes): recommended with the command, not started": (
        "超出时间预算（finetune.max_minutes）：只给出命令，未开始训练"
    ),
}

FINETUNE_ADVICE = {
    "en": {
        "ran": "Fine-tuning already ran ({rung}: {metric} = {mean} {ci} on dev, {test} on test) and does not "
        "meet ({why}), so it is not the next step. What would help: {help}.",
        "help_data": "more training data like it, or a larger base model",
        "help_forgetting": "more general data in the training mix, or fewer epochs or a lower learning rate, "
        "so it keeps its general ability",
        "ready": "Fine-tuning is the next rung and the data is ready: {command}",
        "not_ready": "Fine-tuning is the next rung, but the data is not ready: {failed}.",
        "over_budget": "Fine-tuning is the next rung and the data is ready, but training is estimated at "
        "{minutes} min on this machine, over finetune.max_minutes ({limit} min), so it was not started. "
        "Run it when it suits you: {command}",
    },
    "zh": {
        "ran": "微调已经运行过（{rung}：开发集 {metric} = {mean} {ci}，测试集 {test}），未达标（{why}），"
        "所以它不是下一步。有帮助的做法：{help}。",
        "help_data": "更多同类训练数据，或更大的基础模型",
        "help_forgetting": "在训练数据中混入更多通用数据，或减少轮数、降低学习率，以保住通用能力",
        "ready": "下一级是微调，数据已就绪：{command}",
        "over_budget": "下一级是微调，数据已就绪，但在本机训练预计需要 {minutes} 分钟，"
        "超过 finetune.max_minutes（{limit} 分钟），因此没有开始。方便时运行：{command}",
        "not_ready": "下一级是微调，但数据尚未就绪：{failed}。",
    },
}


def fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "n/a"
    if key == "p":
        return "p<0.001" if value < 0.001 else f"p={value:.3f}"
    if key in ("rate", "hit") and isinstance(value, float):
        return f"{value:.0%}"
    if isinstance(value, float):
        return (
            f"{value:.3f}".rstrip("0").rstrip(".")
            if key in ("threshold", "limit", "max_drop", "alpha")
            else f"{value:.3f}"
        )
    if isinstance(value, list):
        return ", ".join(fmt(v) if not isinstance(v, dict) else _miss(v) for v in value)
    return str(value)


def _miss(params: dict[str, Any]) -> str:
    bound = f"{params.get('op')} {fmt(params.get('threshold'), 'threshold')}"
    return f"{params.get('metric')} = {fmt(params.get('mean'))} ({bound})"


def say(reason: Reason, lang: str = "en") -> str:
    templates = TEMPLATES.get(lang, TEMPLATES["en"])
    template = templates.get(reason.code)
    if template is None:
        return f"{reason.code}: {reason.params}"
    params = {k: fmt(v, k) for k, v in reason.params.items()}
    low, high = reason.params.get("low"), reason.params.get("high")
    params["ci"] = f"[{fmt(low)}, {fmt(high)}]"
    if reason.code in ("at_chance", "at_majority", "beats_no_baseline"):
        params["chance"] = f"{reason.params.get('chance', 0.0):.3f}"
        baselines = {
            "en": {"chance": "chance", "majority": "the majority label"},
            "zh": {"chance": "随机猜测", "majority": "多数标签"},
        }
        params["baseline"] = baselines.get(lang, baselines["en"]).get(
            str(reason.params.get("baseline")), "n/a"
        )
    if reason.code == "ci_straddles_close" and reason.params.get("needed") is None:
        template = templates["ci_straddles_close_on"]
    if reason.code == "remedy_knowledge_source" and reason.params.get("extra_tokens") is None:
        template = templates["remedy_knowledge_source_unknown"]
    if reason.code == "remedy_knowledge_source" and reason.params.get("extra_tokens") is not None:
        params["extra_tokens"] = f"{reason.params['extra_tokens']:.0f}"
    if reason.code == "off_format":
        shown = (" ".join(str(e).split())[:60] for e in reason.params.get("examples") or [])
        params["examples"] = "; ".join(f"“{e}”" for e in shown) or "-"  # one line, no escapes
    return template.format_map(_Default(params))


class _Default(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "n/a"


def note(text: str, lang: str) -> str:
    return NOTES_ZH.get(text, text) if lang == "zh" else text


def headline(decision: Decision, lang: str) -> str:
    rung = decision.recommended or next(
        (r.params.get("rung") for r in decision.reasons if r.code == "first_meets"), ""
    )
    return HEADLINES.get(lang, HEADLINES["en"])[decision.status].format(rung=rung)


def gap_lines(decision: Decision, lang: str) -> list[str]:
    names = GAP_NAMES.get(lang, GAP_NAMES["en"])
    return [f"{names[gap.kind]}: " + " ".join(say(e, lang) for e in gap.evidence) for gap in decision.gaps]


def explain(decision: Decision, lang: str | None = None, gaps: bool = True) -> list[str]:
    """The decision in sentences: the headline, why, the gaps (unless ``gaps=False``: a report
    gives them a section of their own), and what fine-tuning would take."""
    lang = lang or decision.language
    lines = [headline(decision, lang)]
    lines += [say(r, lang) for r in decision.reasons]
    for rung in decision.rungs:
        if rung.misses and rung.state == "evaluated" and rung.label != decision.recommended:
            lines.append(f"{rung.label}: " + "; ".join(say(m, lang) for m in rung.misses))
    lines += search_lines(decision, lang)
    if gaps:
        lines += gap_lines(decision, lang)
    lines += curve_lines(decision, lang)
    ready = decision.readiness
    ran = _finetune_ran(decision, lang)
    if ran is not None and decision.status == NOT_MET:
        lines.append(ran)
    elif ready is not None and decision.status == NOT_MET:
        advice = FINETUNE_ADVICE.get(lang, FINETUNE_ADVICE["en"])
        failed = ", ".join(f"{c.name} = {c.value} ({c.rule})" for c in ready.checks if not c.ok)
        if ready.ready:
            lines.append(advice["ready"].format(command=ready.command))
        elif ready.only_over_budget:
            budget = ready.blocking[0]
            lines.append(
                advice["over_budget"].format(
                    minutes=f"{budget.value:g}", limit=f"{budget.detail['limit']:g}", command=ready.command
                )
            )
        else:
            lines.append(advice["not_ready"].format(failed=failed))
    return lines


CURVE_NOTE = {
    "en": "Learning curve of {rung}: {note}.",
    "zh": "{rung} 的学习曲线未测量：{note}。",
}


def curve_lines(decision: Decision, lang: str) -> list[str]:
    """How much more data would take: the learning curve in words, or why it was not measured."""
    if decision.curve is not None:
        return describe(decision.curve, lang)
    if decision.curve_note:
        rung = next((r.label for r in decision.rungs if r.strategy == "finetune"), "finetune")
        return [CURVE_NOTE.get(lang, CURVE_NOTE["en"]).format(rung=rung, note=decision.curve_note)]
    return []


def _finetune_ran(decision: Decision, lang: str) -> str | None:
    """What the fine-tuned rung scored, when it was evaluated: it is no longer "the next rung"."""
    rung = next((r for r in decision.rungs if r.strategy == "finetune" and r.state == "evaluated"), None)
    if rung is None or rung.dev is None or not decision.targets:
        return None
    metric = decision.targets[0].split()[0]
    est = rung.dev.metrics.get(metric)
    if est is None:
        return None
    test = rung.test.metrics.get(metric) if rung.test is not None else None
    params = {
        "rung": rung.label,
        "metric": metric,
        "mean": fmt(est.mean),
        "ci": f"[{fmt(est.low)}, {fmt(est.high)}]",
        "test": fmt(test.mean if test is not None else None),
    }
    advice = FINETUNE_ADVICE.get(lang, FINETUNE_ADVICE["en"])
    forgot = any(m.code == "forgetting" for m in rung.misses)
    params["why"] = "; ".join(say(m, lang) for m in rung.misses) or "n/a"
    params["help"] = advice["help_forgetting" if forgot else "help_data"]
    return advice["ran"].format(**params)
