"""Scenario ``cert_exam``: an invented certification exam, 澄州市特种设备安全管理员考试.

The regulation (《澄州市特种设备安全管理办法》), its article numbers, limits and fines are made
up: no model has read them and no knowledge base holds them. Each rule is one cell of the
table below: an equipment kind, a requirement, its value and the article that states it.
"""

from __future__ import annotations

REGULATION = "《澄州市特种设备安全管理办法》"

EQUIPMENT = ("电梯", "锅炉", "压力容器", "起重机械", "客运索道", "大型游乐设施", "厂内机动车辆", "压力管道")

# requirement -> (unit, the values the table draws from, question wording)
REQUIREMENTS: dict[str, tuple[str, tuple[int, ...], str]] = {
    "inspection": ("个月", (5, 7, 9, 11, 14, 16, 22, 26), "定期检验周期"),
    "maintenance": ("天", (6, 9, 11, 13, 17, 19, 23, 27), "维护保养间隔"),
    "review": ("年", (2, 3, 5, 6, 7, 8, 9, 10), "作业人员证书复审周期"),
    "report": ("小时", (3, 5, 7, 10, 14, 18, 20, 30), "事故报告时限"),
    "fine": ("万元", (4, 6, 8, 12, 15, 18, 25, 35), "逾期未检最高罚款"),
    "record": ("年", (2, 3, 4, 6, 7, 8, 11, 12), "运行记录保存期限"),
}

# Ways the exam asks for a value (the first three) or for the article (the rest).
VALUE_STEMS = (
    "按照{reg}，{equip}的{what}为____。",
    "澄州市对{equip}规定的{what}是____。",
    "某单位管理一台{equip}，依规定其{what}应为____。",
)
ARTICLE_STEMS = (
    "{reg}中规定{equip}{what}的是第____条。",
    "关于{equip}的{what}，澄州市的规定见于第几条？____",
)
INSTRUCTION = "只回答选项字母。"

FEWSHOT_SIZE = 5
