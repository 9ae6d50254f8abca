"""Every visible string of the workbench and the chat app, in English and Chinese.

``t(key, **values)`` picks the session's language (the sidebar switch; the ``language``
setting by default). A test checks that every key used in ``ui/`` is here in both languages.
"""

from __future__ import annotations

LANGUAGES = {"en": "English", "zh": "中文"}

STRINGS: dict[str, tuple[str, str]] = {
    # app, login, jobs
    "app.language": ("Language", "语言"),
    "app.bad_settings": ("The settings cannot be loaded.", "无法加载设置。"),
    "app.model": ("Default model: {model}", "默认模型：{model}"),
    "login.title": ("Sign in", "登录"),
    "login.caption": ("This workbench is protected by a password.", "此工作台受密码保护。"),
    "login.password": ("Password", "密码"),
    "login.submit": ("Sign in", "登录"),
    "login.wrong": ("Wrong password.", "密码错误。"),
    "login.logout": ("Sign out", "退出登录"),
    "nav.decide": ("Decide", "决策"),
    "nav.playground": ("Playground", "试答"),
    "nav.knowledge": ("Knowledge base", "知识库"),
    "nav.evaluate": ("Evaluate", "评测"),
    "nav.finetune": ("Fine-tune", "微调"),
    "nav.feedback": ("Feedback", "反馈"),
    "nav.settings": ("Settings", "设置"),
    "job.status.queued": ("queued", "排队中"),
    "job.status.running": ("running", "运行中"),
    "job.status.done": ("done", "已完成"),
    "job.status.failed": ("failed", "失败"),
    "job.status.stopped": ("stopped", "已停止"),
    "job.status.died": ("ended unexpectedly", "意外终止"),
    "job.starting": ("starting…", "正在启动…"),
    "job.stop": ("Stop", "停止"),
    "job.stopped": (
        "Stopped. Start it again to continue where it left off.",
        "已停止。再次启动即可从中断处继续。",
    ),
    "job.failed_no_reason": ("The job failed; see its log.", "任务失败，请查看日志。"),
    "job.log": ("Log", "日志"),
    # knowledge base
    "kb.title": ("Knowledge base", "知识库"),
    "kb.caption": (
        "Documents that RAG and the agent answer from. Upload files, search them, remove what is outdated.",
        "RAG 与智能体据以作答的文档。上传文件、检索内容、删除过期资料。",
    ),
    "kb.create": ("Create a knowledge base", "新建知识库"),
    "kb.name": ("Name (letters, digits, - _ .)", "名称（字母、数字、- _ .）"),
    "kb.create_button": ("Create", "创建"),
    "kb.created": (
        "Created knowledge base {name}. Now upload documents.",
        "已创建知识库 {name}，请上传文档。",
    ),
    "kb.empty": (
        "No knowledge base yet. Create one above, then upload your documents.",
        "还没有知识库。请先在上方新建一个，再上传文档。",
    ),
    "kb.pick": ("Knowledge base", "知识库"),
    "kb.sources": ("Sources", "来源文件"),
    "kb.chunks": ("Chunks", "文本块"),
    "kb.embedding": ("Embedding model", "向量模型"),
    "kb.tab.upload": ("Upload", "上传"),
    "kb.tab.search": ("Search", "检索"),
    "kb.tab.sources": ("Sources", "来源"),
    "kb.tab.options": ("Options", "选项"),
    "kb.chunking": ("Chunking", "分块"),
    "kb.chunk_size": ("Chunk size (characters)", "块大小（字符）"),
    "kb.chunk_overlap": ("Overlap (characters)", "重叠（字符）"),
    "kb.overlap_too_big": ("The overlap must be smaller than the chunk size.", "重叠必须小于块大小。"),
    "kb.chunking_note": (
        "Applies to files uploaded from now on; re-upload a file to chunk it again.",
        "对此后上传的文件生效；重新上传文件即可按新设置分块。",
    ),
    "kb.retrieval": ("Retrieval", "检索"),
    "kb.top_k": ("Chunks per query (k)", "每次检索块数（k）"),
    "kb.mode": ("Mode", "模式"),
    "kb.min_score": ("Minimum score for RAG", "RAG 最低相关度"),
    "kb.retrieval_note": (
        "Used by the Search tab here and by RAG in the Playground.",
        "用于此处的检索页以及试答页中的 RAG。",
    ),
    "kb.upload_help": (
        "Supported: {types}. At most {mb} MB per file.",
        "支持：{types}。单个文件不超过 {mb} MB。",
    ),
    "kb.files": ("Files", "文件"),
    "kb.ingest": ("Add to the knowledge base", "加入知识库"),
    "kb.refused_type": (
        "{file}: refused, unsupported type (supported: {types}).",
        "{file}：已拒绝，类型不支持（支持：{types}）。",
    ),
    "kb.refused_size": ("{file}: refused, larger than {mb} MB.", "{file}：已拒绝，超过 {mb} MB。"),
    "kb.job_title": ("Adding {n} file(s) to {name}", "向 {name} 添加 {n} 个文件"),
    "kb.report": ("Ingest report", "导入报告"),
    "kb.col.file": ("file", "文件"),
    "kb.col.status": ("status", "状态"),
    "kb.col.chunks": ("chunks", "块数"),
    "kb.col.removed": ("removed", "移除"),
    "kb.col.pages": ("pages", "页数"),
    "kb.col.note": ("note", "说明"),
    "kb.col.size": ("size", "大小"),
    "kb.col.chunking": ("chunking", "分块"),
    "kb.col.path": ("path", "路径"),
    "kb.some_failed": (
        "{n} file(s) failed (see the note); the others were added.",
        "{n} 个文件失败（见说明），其余文件已加入。",
    ),
    "kb.query": ("Search the knowledge base", "检索知识库"),
    "kb.query_placeholder": ("e.g. How many days of annual leave?", "例如：年假有多少天？"),
    "kb.no_hits": ("No matching chunks.", "没有匹配的文本块。"),
    "kb.score": ("score", "相关度"),
    "kb.no_sources": (
        "This knowledge base is empty: upload files in the Upload tab.",
        "知识库为空：请在“上传”页上传文件。",
    ),
    "kb.source": ("Source", "来源"),
    "kb.browse": ("Show its chunks", "显示其文本块"),
    "kb.remove_source": ("Remove this source", "删除此来源"),
    "kb.removed": ("Removed {n} chunks of {file}.", "已删除 {file} 的 {n} 个文本块。"),
    "kb.confirm_delete": ("Yes, delete {name} and all its chunks", "确认删除 {name} 及其全部文本块"),
    "kb.delete": ("Delete the knowledge base", "删除知识库"),
    # playground
    "play.title": ("Playground", "试答"),
    "play.caption": (
        "Ask one question to several strategies and compare their answers and traces.",
        "同一个问题交给多种策略作答，对比答案与推理过程。",
    ),
    "play.question": ("Question", "问题"),
    "play.strategies": ("Strategies", "策略"),
    "play.kb": ("Knowledge base (rag, agent)", "知识库（rag、agent）"),
    "play.no_kb": ("none yet", "暂无"),
    "play.model": ("Model", "模型"),
    "play.max_tokens": ("Max new tokens", "最多生成词元数"),
    "play.system": ("System prompt (optional)", "系统提示（可选）"),
    "play.ask": ("Ask", "提问"),
    "play.need_question": ("Write a question first.", "请先输入问题。"),
    "play.need_strategy": ("Pick at least one strategy.", "请至少选择一种策略。"),
    "play.answering": ("Answering…", "正在作答…"),
    "play.empty": (
        "Write a question, pick strategies and press Ask. RAG needs a knowledge base (see Knowledge base).",
        "输入问题、选择策略后点击“提问”。RAG 需要知识库（见“知识库”页）。",
    ),
    "play.tokens": ("Tokens (in+out)", "词元（入+出）"),
    "play.calls": ("Model calls", "模型调用"),
    "play.latency": ("Latency", "延迟"),
    "play.model_used": ("model {model}", "模型 {model}"),
    "play.chunks": ("Retrieved chunks", "检索到的文本块"),
    "play.trace": ("Trace ({n} steps)", "过程（{n} 步）"),
    "play.truncated": ("The prompt was cut to fit the context window.", "提示过长，已截断以适应上下文窗口。"),
    # evaluate
    "eval.title": ("Evaluate", "评测"),
    "eval.caption": (
        "Run strategies on a suite; scores come with 95% confidence intervals.",
        "在评测集上运行各策略；分数附 95% 置信区间。",
    ),
    "eval.tab.run": ("Run", "运行"),
    "eval.tab.results": ("Results", "结果"),
    "eval.tab.compare": ("Compare runs", "对比运行"),
    "eval.no_suites": (
        "No suites found. Put suite YAML files in ./suites or datasets/suites, or type a path below.",
        "未找到评测集。请把评测集 YAML 放在 ./suites 或 datasets/suites，或在下方输入路径。",
    ),
    "eval.suite": ("Suite", "评测集"),
    "eval.suite_path": ("…or a suite file path", "…或评测集文件路径"),
    "eval.strategies": ("Strategies", "策略"),
    "eval.kb": ("Knowledge base (rag, agent)", "知识库（rag、agent）"),
    "eval.model": ("Model", "模型"),
    "eval.limit": ("Only the first N items (0 = all)", "仅前 N 题（0 = 全部）"),
    "eval.limit_help": ("A quick check on a few items.", "用少量题目快速检查。"),
    "eval.no_judge": ("Deterministic metrics only", "仅确定性指标"),
    "eval.judge": ("Judge model (for judged metrics)", "评审模型（用于评审类指标）"),
    "eval.judge_placeholder": ("default: the evaluated model", "默认：被评测的模型"),
    "eval.start": ("Run in the background", "后台运行"),
    "eval.need_suite": ("Pick a suite.", "请选择评测集。"),
    "eval.job_title": ("Evaluating {suite}", "评测 {suite}"),
    "eval.done": ("Run {run} is complete: see the Results tab.", "运行 {run} 已完成：请查看“结果”页。"),
    "eval.no_runs": ("No runs yet: start one in the Run tab.", "还没有运行记录：请在“运行”页启动。"),
    "eval.pick_run": ("Run", "运行"),
    "eval.not_complete": (
        "This run is {status} ({n} records so far).",
        "此运行状态为 {status}（已有 {n} 条记录）。",
    ),
    "eval.run_facts": (
        "suite {suite} · model {model} · judge {judge} · {n} records · {calls} model calls · {seconds} s",
        "评测集 {suite} · 模型 {model} · 评审 {judge} · {n} 条记录 · {calls} 次模型调用 · {seconds} 秒",
    ),
    "eval.no_judge_short": ("none", "无"),
    "eval.threshold_missed": ("Threshold missed: {what}", "未达阈值：{what}"),
    "eval.thresholds_met": ("Every threshold is met.", "全部阈值均已达到。"),
    "eval.col.strategy": ("strategy", "策略"),
    "eval.col.cost": ("cost / 1k questions", "每千题成本"),
    "eval.col.latency": ("p50 latency (s)", "p50 延迟（秒）"),
    "eval.chart_metric": ("Chart metric", "图表指标"),
    "eval.cost_axis": ("cost per 1k questions", "每千题成本"),
    "eval.cost_vs_score": ("Cost against score", "成本与分数"),
    "eval.worst": ("Worst items first", "最差题目优先"),
    "eval.no_records": ("No records for this strategy.", "此策略没有记录。"),
    "eval.question": ("Question", "问题"),
    "eval.answer": ("Answer", "回答"),
    "eval.reference": ("Reference", "参考答案"),
    "eval.contexts": ("Retrieved contexts", "检索到的上下文"),
    "eval.need_two": ("Two complete runs are needed to compare.", "至少需要两次完成的运行才能对比。"),
    "eval.run_a": ("Run A", "运行 A"),
    "eval.run_b": ("Run B (baseline)", "运行 B（基线）"),
    "eval.no_shared": (
        "The two runs share no metric: compare runs of the same suite.",
        "两次运行没有共同指标：请对比同一评测集的运行。",
    ),
    "eval.test": ("test", "检验"),
    "eval.reading": ("reading", "结论"),
    "eval.significant": ("significant (p < 0.05)", "显著（p < 0.05）"),
    "eval.not_significant": ("no significant difference", "无显著差异"),
    # end-user chat
    "chat.title": ("Ask the assistant", "智能助手"),
    "chat.caption": (
        "Answers come from the knowledge base {kb}, with sources.",
        "回答来自知识库 {kb}，并附出处。",
    ),
    "chat.caption_no_kb": ("Ask a question.", "请提问。"),
    "chat.empty": (
        "Ask a question below. Rate each answer with 👍 or 👎; a correction helps us improve.",
        "请在下方提问。可用 👍 或 👎 评价每个回答；提供更正能帮助我们改进。",
    ),
    "chat.placeholder": ("Your question", "输入你的问题"),
    "chat.thinking": ("Thinking…", "思考中…"),
    "chat.error": ("Sorry, no answer could be given.", "抱歉，暂时无法回答。"),
    "chat.sources": ("Sources", "出处"),
    "chat.page": ("page", "页"),
    "chat.correction": ("What would the right answer be? (optional)", "正确答案应是什么？（可选）"),
    "chat.comment": ("Comment (optional)", "备注（可选）"),
    "chat.send": ("Send feedback", "提交反馈"),
    "chat.thanks": ("Thank you, your feedback was recorded.", "谢谢，反馈已记录。"),
    # decide
    "dec.title": ("Decide", "决策"),
    "dec.caption": (
        "Climb the ladder: prompt → few-shot → reflection → RAG → agent → fine-tune. The cheapest rung "
        "that meets every target wins, with the evidence.",
        "逐级尝试：提示 → 少样本 → 自我反思 → RAG → 智能体 → 微调。"
        "满足全部目标的最便宜一级胜出，并给出证据。",
    ),
    "dec.tab.run": ("New decision", "新决策"),
    "dec.tab.past": ("Past decisions", "历史决策"),
    "dec.source": ("Decision config", "决策配置"),
    "dec.source.pick": ("Pick a file", "选择文件"),
    "dec.source.write": ("Write one", "自行编写"),
    "dec.no_configs": (
        "No decision config found (a YAML file with suites: and targets:). Type a path below or write one.",
        "未找到决策配置（含 suites: 与 targets: 的 YAML 文件）。请在下方输入路径或自行编写。",
    ),
    "dec.config": ("Config file", "配置文件"),
    "dec.config_path": ("…or a config file path", "…或配置文件路径"),
    "dec.show_config": ("Show the config", "查看配置"),
    "dec.write_help": (
        "Saved under LADDER_HOME/ui/decisions; use absolute paths for suites and data.",
        "保存在 LADDER_HOME/ui/decisions 下；评测集与数据请使用绝对路径。",
    ),
    "dec.file_name": ("File name", "文件名"),
    "dec.yaml": ("Decision config (YAML)", "决策配置（YAML）"),
    "dec.save": ("Save", "保存"),
    "dec.saved": ("Saved {path}", "已保存 {path}"),
    "dec.finetune": ("Fine-tuning", "微调"),
    "dec.finetune.config": ("as the config says", "按配置"),
    "dec.finetune.allow": (
        "allow (train when every cheaper rung misses)",
        "允许（较便宜各级均未达标时训练）",
    ),
    "dec.finetune.forbid": ("do not train (recommend only)", "不训练（仅给出建议）"),
    "dec.language_note": ("The reasons are written in the page's language.", "理由以当前页面语言撰写。"),
    "dec.start": ("Decide in the background", "后台决策"),
    "dec.job_title": ("Deciding with {config}", "按 {config} 决策"),
    "dec.done": (
        "The decision is ready ({status}): see Past decisions.",
        "决策已完成（{status}）：请查看“历史决策”。",
    ),
    "dec.no_decisions": (
        "No decisions yet: start one in the New decision tab.",
        "还没有决策：请在“新决策”页启动。",
    ),
    "dec.pick": ("Decision", "决策"),
    "dec.col.rung": ("rung", "级别"),
    "dec.col.state": ("state", "状态"),
    "dec.col.meets": ("meets", "达标"),
    "dec.col.cost": ("cost / 1k q", "每千题成本"),
    "dec.col.p95": ("p95 latency (s)", "p95 延迟（秒）"),
    "dec.col.note": ("note", "说明"),
    "dec.col.name": ("name", "名称"),
    "dec.col.created": ("created", "创建时间"),
    "dec.col.status": ("status", "结论"),
    "dec.col.recommended": ("recommended", "推荐"),
    "dec.chart_score": (
        "{metric} by rung, 95% CI, target {target}",
        "各级 {metric}（95% 置信区间，目标 {target}）",
    ),
    "dec.chart_cost": ("Cost against {metric}", "成本与 {metric}"),
    "dec.finetune_command": ("To fine-tune by hand:", "手动微调命令："),
    "dec.export": ("Export the HTML report", "导出 HTML 报告"),
    "dec.delete": ("Delete this decision", "删除此决策"),
}


def current_language() -> str:
    import streamlit as st

    lang = st.session_state.get("lang")
    return lang if lang in LANGUAGES else "en"


def t(key: str, **values: object) -> str:
    """The string for ``key`` in the session's language, with ``values`` filled in."""
    entry = STRINGS.get(key)
    if entry is None:
        return key
    text = entry[1] if current_language() == "zh" else entry[0]
    return text.format(**values) if values else text


def language_switch(default: str = "en") -> None:
    """The zh/en switch in the sidebar; the choice lives in the session."""
    import streamlit as st

    if st.session_state.get("lang") not in LANGUAGES:
        st.session_state["lang"] = default if default in LANGUAGES else "en"
    with st.sidebar:
        st.radio(
            STRINGS["app.language"][0] + " / " + STRINGS["app.language"][1],
            list(LANGUAGES),
            format_func=LANGUAGES.__getitem__,
            key="lang",
            horizontal=True,
        )
