"""``route`` behind ``ladder serve``: a named model config (``server_models``) answers through the
same strategy, one question to the adapter and one to the base, on a tiny llama + LoRA adapter."""

from __future__ import annotations

from pathlib import Path

from assistant.settings import Settings, load_settings
from tests.openai_server import serve
from tests.server.helpers import KEY, client
from tests.strategies.test_route import adapter_dir, write_router_data  # noqa: F401  (fixture)

QUESTIONS = ("Route this support ticket: my pillow arrived wet, order 3", "Who wrote Hamlet?")


def test_a_named_route_model_answers_through_the_server(
    tiny_model_dir: Path,
    adapter_dir: Path,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    isolated_home: Path,
) -> None:
    from ui.server.app import create_app
    from ui.server.config import server_config

    train, general = write_router_data(tmp_path)
    models = tmp_path / "models.yaml"
    models.write_text(
        f"tickets-router:\n  strategy: route\n  in_domain: ['{train}']\n  general: ['{general}']\n"
        "  k: 3\n  max_new_tokens: 4\n",
        encoding="utf-8",
    )
    settings: Settings = load_settings({"threads": 1, "dtype": "float32"})
    settings.server_models = models
    config = server_config(settings, model=f"{tiny_model_dir}+{adapter_dir}", api_keys=[KEY])
    with serve(create_app(settings, config)) as url:
        api = client(url)
        assert "tickets-router" in {m.id for m in api.models.list()}
        routed = []
        for question in QUESTIONS:
            reply = api.chat.completions.create(
                model="tickets-router", messages=[{"role": "user", "content": question}]
            )
            ladder = (reply.model_extra or {})["ladder"]
            assert ladder["strategy"] == "route"
            routed.append(reply)
    # The same answers as the strategy gives in-process: the adapter's for the ticket, the base's
    # for the rest (the two routes differ on this tiny adapter, see test_route).
    from assistant.service import answer_questions
    from assistant.types import Question

    spec = {
        "strategy": "route",
        "in_domain": [str(train)],
        "general": [str(general)],
        "k": 3,
        "max_new_tokens": 4,
    }
    direct = answer_questions(
        [Question(q) for q in QUESTIONS], spec, settings=settings, model=f"{tiny_model_dir}+{adapter_dir}"
    )
    assert [next(s.detail["to"] for s in a.trace.steps if s.kind == "route") for a in direct] == [
        "adapter",
        "base",
    ]
    assert [r.choices[0].message.content for r in routed] == [a.response for a in direct]
