"""Scenario ``device_calls``: Chinese smart-building requests and the one call each becomes.

The zone codes (三楼会议室 → F3-MR) exist only here and in the training examples: the suite's
prompt gives the call syntax and the function names, no document names a code, and the
few-shot pool shows only some zones. Requests are short so that ~240 training examples of
under 80 tokens fine-tune a 0.5B model on a 2-core CPU within 30 minutes.
"""

from __future__ import annotations

# zone code -> the ways a user names the room (the first is the canonical name)
ZONES: dict[str, tuple[str, ...]] = {
    "F1-LB": ("一楼大堂", "一层大厅", "1楼大堂"),
    "F1-CF": ("一楼咖啡区", "一层咖啡角", "1楼咖啡区"),
    "B1-PK": ("地下停车场", "负一楼车库", "B1停车场"),
    "B1-SV": ("地下机房", "负一楼机房", "B1服务器机房"),
    "F2-OP": ("二楼开放办公区", "二层大办公区", "2楼开放工位"),
    "F2-TR": ("二楼培训室", "二层培训教室", "2楼培训室"),
    "F3-MR": ("三楼会议室", "三层会议室", "3楼大会议室"),
    "F3-GM": ("三楼总经理室", "三层总经理办公室", "3楼总经理室"),
    "F4-LA": ("四楼实验室", "四层实验室", "4楼实验间"),
    "F4-AR": ("四楼档案室", "四层档案库", "4楼档案室"),
    "F5-DN": ("五楼餐厅", "五层食堂", "5楼员工餐厅"),
    "RF-GD": ("屋顶花园", "楼顶花园", "天台花园"),
}

# function -> (its value parameter or None, the values it takes, request templates)
FUNCTIONS: dict[str, tuple[str | None, tuple[int, ...], tuple[str, ...]]] = {
    "hvac.set": (
        "temp",
        tuple(range(18, 29)),
        (
            "把{room}的空调调到{v}度",
            "{room}太热了，空调设成{v}度",
            "请将{room}温度设为{v}℃",
            "{room}空调温度改成{v}度吧",
            "{room}有点冷，温度调到{v}度",
        ),
    ),
    "light.dim": (
        "level",
        tuple(range(10, 100, 10)),
        (
            "把{room}的灯调到{v}%",
            "{room}灯光亮度调成{v}%",
            "{room}的照明调暗到{v}%",
            "请把{room}灯光设为{v}%亮度",
            "{room}太亮了，灯开{v}%就行",
        ),
    ),
    "door.lock": (
        None,
        (),
        (
            "锁上{room}的门",
            "{room}没人了，把门锁好",
            "请把{room}门禁上锁",
            "{room}的门帮忙锁一下",
            "下班了，锁{room}",
        ),
    ),
    "door.unlock": (
        None,
        (),
        (
            "打开{room}的门锁",
            "{room}的门帮我解锁一下",
            "给{room}开一下门",
            "请解锁{room}门禁",
            "访客到了，开{room}的门",
        ),
    ),
}
# A polite opener fits a request that starts with a verb; the others only take a greeting.
OPENERS = ("", "", "麻烦", "你好，", "帮我")
GREETINGS = ("", "", "你好，")
VERB_STARTS = ("把", "锁上", "打开", "给")
CLOSERS = ("", "。", "，谢谢", "！")

# The suite's prompt (and the training instruction): the syntax and the functions, no zone.
INSTRUCTION = (
    "只输出一条调用，如 light.dim(zone=区域编号, level=30)；"
    "函数：hvac.set(temp)、light.dim(level)、door.lock、door.unlock。"
)


def call(function: str, zone: str, value: int | None) -> str:
    """The one right reply for a request: the whole rule."""
    parameter = FUNCTIONS[function][0]
    return f"{function}(zone={zone}, {parameter}={value})" if parameter else f"{function}(zone={zone})"


# Building documents for the kb: history and rules, no zone code (the RAG rung finds nothing useful).
DOCUMENTS: dict[str, str] = {
    "building_history.md": """# 栖霞中心大楼简介

栖霞中心大楼于 2014 年落成，地上五层、地下一层，另有屋顶花园。
大楼由澄浦建筑设计院设计，外立面采用双层玻璃幕墙。
2023 年大楼完成智能化改造，空调、照明和门禁都接入了统一的楼宇控制平台。
大楼日常由物业服务中心管理，服务中心位于一楼大堂东侧。
""",
    "safety_rules.md": """# 大楼安全守则

进入机房须由两人同行，并在物业服务中心登记。
消防通道和楼梯间严禁堆放物品。
发生火警时请勿乘坐电梯，沿疏散指示从最近的楼梯撤离。
夜间十点以后进入大楼须刷卡并登记访客信息。
""",
    "energy_policy.md": """# 节能与舒适度约定

夏季空调温度建议不低于 26 度，冬季不高于 20 度。
无人的房间应关灯，公共区域照明在夜间自动降低亮度。
会议结束后请关闭投影设备和空调。
节能情况每季度在大楼公告栏公布。
""",
}

# The few-shot pool covers these zones only (all four functions).
FEWSHOT_ZONES = ("F1-LB", "F2-OP", "F3-MR", "B1-PK")
FEWSHOT_SIZE = 8
