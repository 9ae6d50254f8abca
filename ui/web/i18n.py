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
    "login.caption_chat": ("This assistant is protected by a password.", "此助手受密码保护。"),
    "login.password": ("Password", "密码"),
    "login.submit": ("Sign in", "登录"),
    "login.wrong": ("Wrong password.", "密码错误。"),
    "login.locked": (
        "Too many wrong passwords. Try again in {minutes} min.",
        "密码错误次数过多，请 {minutes} 分钟后再试。",
    ),
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
    "kb.status.added": ("added", "已添加"),
    "kb.status.replaced": ("replaced", "已替换"),
    "kb.status.unchanged": ("unchanged", "未变化"),
    "kb.status.duplicate": ("duplicate", "重复"),
    "kb.status.failed": ("failed", "失败"),
    "kb.status.skipped": ("skipped", "已跳过"),
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
    "play.trace": ("Trace: {n} step(s)", "过程：{n} 步"),
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
        "Ask a question below. Rate each answer with thumbs up or down; a correction helps us improve.",
        "请在下方提问。可对每个回答点赞或点踩；提供更正能帮助我们改进。",
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
    "chat.queued": ("Waiting for the answer above.", "等待上一个回答完成。"),
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
    "dec.first_run": (
        "**Getting started.** The demo decisions below answer questions about Qinghe Goods, a fictional "
        "shop, from its knowledge base **{kb}**, which does not exist yet. First create it from the "
        "{n} documents that come with Ladder (about a minute), then pick a demo decision and press "
        "*Decide in the background*; the verdict appears under *Past decisions*.",
        "**快速开始。** 下面的演示决策回答虚构商店“青禾”的问题，答案来自知识库 **{kb}**，"
        "但它尚未创建。请先用 Ladder 自带的 {n} 份文档创建它（约一分钟），"
        "再选择一个演示决策并点击“后台决策”；结论会出现在“历史决策”中。",
    ),
    "dec.demo_kb_missing": (
        "This decision answers from the demo knowledge base **{kb}**, which does not exist yet. "
        "Create it from the {n} documents that come with Ladder, then start the decision.",
        "此决策依据演示知识库 **{kb}** 作答，但它尚未创建。请先用 Ladder 自带的 {n} 份文档创建，再开始决策。",
    ),
    "dec.kb_missing": (
        "This decision answers from the knowledge base {kb}, which does not exist yet. Create it on "
        "the Knowledge base page and add its documents, then start the decision.",
        "此决策依据知识库 {kb} 作答，但它尚未创建。请在“知识库”页面创建并添加文档，再开始决策。",
    ),
    "dec.open_kb_page": ("Open the Knowledge base page", "打开知识库页面"),
    "demo.create": ("Create the demo knowledge base", "创建演示知识库"),
    "demo.job_title": ("Demo knowledge base {kb}", "演示知识库 {kb}"),
    "demo.failed": (
        "The demo knowledge base {kb} could not be built:",
        "无法创建演示知识库 {kb}：",
    ),
    "demo.ready": (
        "The demo knowledge base {kb} is ready ({files} documents, {chunks} chunks). Pick a demo "
        "decision and press Decide in the background.",
        "演示知识库 {kb} 已就绪（{files} 份文档，{chunks} 个片段）。请选择一个演示决策并点击“后台决策”。",
    ),
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
    "dec.confirm_delete": ("Yes, delete this decision", "确认删除此决策"),
    # fine-tune
    "ft.title": ("Fine-tune", "微调"),
    "ft.caption": (
        "The last rung: prepare the data, train a LoRA adapter, check it against the base model.",
        "最后一级：准备数据、训练 LoRA 适配器、与基座模型对比。",
    ),
    "ft.tab.prepare": ("Prepare data", "准备数据"),
    "ft.tab.train": ("Train", "训练"),
    "ft.tab.adapters": ("Adapters", "适配器"),
    "ft.domain": ("Domain data files (one path per line)", "领域数据文件（每行一个路径）"),
    "ft.data_name": ("Name of the prepared set", "数据集名称"),
    "ft.general": ("General data mixed in", "混入的通用数据"),
    "ft.general_help": (
        "default (datasets/general), none, or a file",
        "default（datasets/general）、none 或文件路径",
    ),
    "ft.ratio": ("General examples per domain example", "每条领域样本混入的通用样本数"),
    "ft.format": ("Format", "格式"),
    "ft.split": ("train,val,test fractions", "训练/验证/测试比例"),
    "ft.min_examples": ("Fewest domain examples", "最少领域样本数"),
    "ft.mask_pii": (
        "Mask phone numbers, ID numbers, cards and e-mails",
        "遮盖手机号、身份证号、银行卡和邮箱",
    ),
    "ft.prepare": ("Prepare (preview the report)", "准备（预览报告）"),
    "ft.need_domain": ("Give at least one domain data file.", "请至少提供一个领域数据文件。"),
    "ft.prepare_job": ("Preparing {name}", "准备 {name}"),
    "ft.report_of": ("Report of", "报告"),
    "ft.no_prepared": (
        "No prepared data yet: list your domain files above and press Prepare.",
        "还没有准备好的数据：请在上方列出领域数据文件并点击“准备”。",
    ),
    "ft.train_examples": ("Training examples", "训练样本"),
    "ft.domain_train": ("Domain examples (train)", "领域样本（训练）"),
    "ft.duplicates": ("Duplicates (exact + near)", "重复（完全 + 近似）"),
    "ft.mixing": ("Mixing domain : general", "混合比 领域 : 通用"),
    "ft.funnel": ("Step by step", "逐步统计"),
    "ft.col.data": ("data", "数据"),
    "ft.col.step": ("step", "步骤"),
    "ft.col.before": ("before", "之前"),
    "ft.col.after": ("after", "之后"),
    "ft.col.dropped": ("dropped", "丢弃"),
    "ft.col.split": ("split", "划分"),
    "ft.splits": ("Splits", "数据划分"),
    "ft.lengths": (
        "Length in tokens ({tokenizer}): median {median}, p95 {p95}",
        "长度（词元，{tokenizer}）：中位数 {median}，p95 {p95}",
    ),
    "ft.leaks": (
        "{n} training example(s) matched evaluation questions and were dropped.",
        "{n} 条训练样本与评测题重合，已剔除。",
    ),
    "ft.adapter": ("Adapter name", "适配器名称"),
    "ft.base": ("Base model (a local pack or folder)", "基座模型（本地模型包或目录）"),
    "ft.data": ("Prepared data", "已准备的数据"),
    "ft.data_path": ("…or a prepared folder / JSONL path", "…或已准备的目录 / JSONL 路径"),
    "ft.epochs": ("Epochs", "轮数"),
    "ft.max_steps": ("Max steps (0 = by epochs)", "最多步数（0 = 按轮数）"),
    "ft.lr": ("Learning rate", "学习率"),
    "ft.batch": ("Batch size", "批大小"),
    "ft.train": ("Train in the background", "后台训练"),
    "ft.need_data": ("Pick prepared data or give a path.", "请选择已准备的数据或填写路径。"),
    "ft.train_job": ("Training {name}", "训练 {name}"),
    "ft.resume": ("Resume from the last checkpoint", "从最近的检查点继续"),
    "ft.resume_job": ("Resuming {name}", "继续训练 {name}"),
    "ft.no_runs": ("No training runs yet.", "还没有训练记录。"),
    "ft.run": ("Training run", "训练记录"),
    "ft.run_line": (
        "{run} · adapter {adapter} · base {base} · {status} · step {step} of {total}",
        "{run} · 适配器 {adapter} · 基座 {base} · {status} · 第 {step}/{total} 步",
    ),
    "ft.no_steps": ("No step logged yet.", "尚未记录任何步骤。"),
    "ft.verdict": ("Loss curve: {verdict}. {message}", "损失曲线：{verdict}。{message}"),
    "ft.no_adapters": ("No adapters yet: train one in the Train tab.", "还没有适配器：请在“训练”页训练。"),
    "ft.col.name": ("name", "名称"),
    "ft.col.base": ("base model", "基座模型"),
    "ft.col.created": ("created", "创建时间"),
    "ft.col.status": ("status", "状态"),
    "ft.col.size": ("size", "大小"),
    "ft.manifest": ("Manifest", "清单"),
    "ft.evaluations": ("Recorded evaluations", "已记录的评测"),
    "ft.before_after": ("Before / after", "微调前后对比"),
    "ft.evaluate": ("Evaluate base and adapter", "评测基座与适配器"),
    "ft.compare_job": ("Before/after for {name}", "{name} 微调前后对比"),
    # settings
    "set.title": ("Settings", "设置"),
    "set.caption": (
        "Changes are saved to {path}, the file the CLI reads too.",
        "更改保存到 {path}，命令行也读取此文件。",
    ),
    "set.tab.models": ("Models", "模型"),
    "set.tab.backends": ("Backends", "后端"),
    "set.tab.evaluation": ("Judge, targets, prices", "评审、目标、价格"),
    "set.tab.security": ("Password", "密码"),
    "set.tab.all": ("All settings", "全部设置"),
    "set.save": ("Save", "保存"),
    "set.saved": ("Saved to {path}.", "已保存到 {path}。"),
    "set.overridden": (
        "An environment variable or flag still overrides: {keys}.",
        "以下设置仍被环境变量或启动参数覆盖：{keys}。",
    ),
    "set.col.pack": ("pack", "模型包"),
    "set.col.installed": ("installed", "已安装"),
    "set.col.size": ("size (GGUF)", "大小（GGUF）"),
    "set.col.languages": ("languages", "语言"),
    "set.col.licence": ("licence", "许可证"),
    "set.pack": ("Model pack", "模型包"),
    "set.pull": ("Pull (download, verify, convert)", "拉取（下载、校验、转换）"),
    "set.pull_job": ("Pulling {name}", "拉取 {name}"),
    "set.make_default": ("Make it the default model", "设为默认模型"),
    "set.remove": ("Remove the pack", "删除模型包"),
    "set.removed": ("Removed {name}.", "已删除 {name}。"),
    "set.not_installed": ("{name} is not installed.", "{name} 未安装。"),
    "set.model": ("Default model", "默认模型"),
    "set.model_help": (
        "A pack name, a model folder, openai:<model>@<url>, or fake",
        "模型包名、模型目录、openai:<model>@<url> 或 fake",
    ),
    "set.base_url": ("OpenAI-compatible endpoint", "OpenAI 兼容端点"),
    "set.api_key": ("API key", "API 密钥"),
    "set.api_key_help": ("Left empty: the stored key is kept.", "留空则保留已存的密钥。"),
    "set.timeout": ("Timeout (s)", "超时（秒）"),
    "set.retries": ("Retries", "重试次数"),
    "set.concurrency": ("Parallel requests", "并发请求"),
    "set.threads": ("CPU threads", "CPU 线程"),
    "set.language": ("Language of decisions", "决策语言"),
    "set.judge": ("Default judge model", "默认评审模型"),
    "set.judge_help": (
        "Used by Evaluate for judged metrics; empty: the evaluated model.",
        "评测页的评审类指标使用；留空则用被评测模型。",
    ),
    "set.targets": ("Default decision targets (YAML)", "默认决策目标（YAML）"),
    "set.targets_help": ("The targets a new decision config starts with.", "新建决策配置时的初始目标。"),
    "set.targets_bad": (
        'Targets must be a YAML mapping, e.g. token_f1: ">= 0.6"',
        '目标必须是 YAML 映射，例如 token_f1: ">= 0.6"',
    ),
    "set.prices": ("Price table (YAML)", "价格表（YAML）"),
    "set.prices_help": (
        "Cost per 1,000 questions in reports and decisions.",
        "用于报告与决策中的每千题成本。",
    ),
    "set.password_state_on": ("A workbench password is set.", "已设置工作台密码。"),
    "set.password_state_off": (
        "No password: anyone who can reach this address can use the workbench.",
        "未设置密码：能访问此地址的人都可使用工作台。",
    ),
    "set.new_password": ("New password (at least {n} characters)", "新密码（至少 {n} 个字符）"),
    "set.current_password": ("Current password", "当前密码"),
    "set.current_wrong": ("The current password is wrong.", "当前密码不正确。"),
    "set.weak.short": (
        "Too short: use at least {n} characters, for example a few unrelated words.",
        "太短：至少 {n} 个字符，例如几个不相关的词。",
    ),
    "set.weak.repetitive": (
        "Too weak: it repeats one character or a short pattern.",
        "太弱：重复同一字符或简单模式。",
    ),
    "set.weak.sequence": (
        "Too weak: it is a run of letters, digits or keys (like abcdefghij or qwertyuiop).",
        "太弱：是连续的字母、数字或键位（如 abcdefghij、qwertyuiop）。",
    ),
    "set.weak.common": (
        "Too weak: it is a common password (digits or signs around it do not help).",
        "太弱：是常见密码（前后加数字或符号也无济于事）。",
    ),
    "set.repeat_password": ("Repeat it", "再次输入"),
    "set.set_password": ("Set the password", "设置密码"),
    "set.password_mismatch": ("The two passwords differ.", "两次输入的密码不一致。"),
    "set.clear_password": ("Remove the password", "移除密码"),
    "set.col.setting": ("setting", "设置项"),
    "set.col.value": ("value", "值"),
    "set.col.source": ("from", "来源"),
    # feedback
    "fb.title": ("Feedback", "反馈"),
    "fb.caption": (
        "End users' ratings from the chat and the API. Promote the useful ones to the evaluation suite "
        "or to training data; a question goes to one side only.",
        "来自聊天与 API 的用户评价。把有用的条目加入评测集或训练数据；同一问题只能进入其中一侧。",
    ),
    "fb.count.new": ("To review", "待审核"),
    "fb.count.promoted": ("Promoted", "已采纳"),
    "fb.count.dismissed": ("Dismissed", "已忽略"),
    "fb.status": ("Status", "状态"),
    "fb.status.new": ("to review", "待审核"),
    "fb.status.promoted": ("promoted", "已采纳"),
    "fb.status.dismissed": ("dismissed", "已忽略"),
    "fb.status.all": ("all", "全部"),
    "fb.rating": ("Rating", "评价"),
    "fb.rating.all": ("all", "全部"),
    "fb.rating.down": ("thumbs down", "差评"),
    "fb.rating.up": ("thumbs up", "好评"),
    "fb.empty": (
        "Nothing to review. Ratings arrive from the chat (ladder chat-ui) and from ladder serve.",
        "暂无待审核条目。评价来自聊天应用（ladder chat-ui）和 ladder serve。",
    ),
    "fb.none": ("No feedback with these filters.", "没有符合筛选条件的反馈。"),
    "fb.meta": (
        "{created} · from {source} · strategy {strategy} · model {model} · {status}",
        "{created} · 来自 {source} · 策略 {strategy} · 模型 {model} · {status}",
    ),
    "fb.correction": ("Correction", "更正"),
    "fb.comment": ("Comment", "备注"),
    "fb.promoted_to": ("Promoted to {target}: {path}", "已加入 {target}：{path}"),
    "fb.reference": ("Reference answer", "参考答案"),
    "fb.reference_help": (
        "Defaults to the correction (or the answer of a thumbs-up).",
        "默认为更正内容（好评则为原回答）。",
    ),
    "fb.to_suite": ("To the eval suite", "加入评测集"),
    "fb.to_sft": ("To SFT data", "加入 SFT 数据"),
    "fb.to_train": ("To training (SFT + pairs)", "加入训练（SFT + 偏好对）"),
    "fb.dismiss": ("Dismiss", "忽略"),
    "fb.promoted": ("Feedback #{id} promoted: {where}", "反馈 #{id} 已采纳：{where}"),
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


def lazy(key: str, **values: object) -> dict[str, object]:
    """A string to translate when shown, not now (a job's title is read in any language)."""
    return {"key": key, "values": values}


def translate(text: str | dict[str, object]) -> str:
    if isinstance(text, dict):
        values = text.get("values")
        return t(str(text.get("key", "")), **(values if isinstance(values, dict) else {}))
    return text


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
