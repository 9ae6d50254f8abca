"""The one registry behind strategies, backends, metrics, tools and verifiers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant.errors import ConfigError
from assistant.registry import Registry, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module on the path that no one has imported yet, with one class in it."""
    name = "ladder_registry_probe"
    (tmp_path / f"{name}.py").write_text("class Thing:\n    size = 3\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_a_string_target_is_imported_on_first_get_only(plugin_module: str) -> None:
    registry: Registry[type] = Registry("widget")
    registry.register("thing", f"{plugin_module}:Thing")
    assert "thing" in registry and registry.names() == ["thing"]
    assert plugin_module not in sys.modules, "registering must not import the module"
    thing = registry.get("thing")
    assert plugin_module in sys.modules
    assert thing.__name__ == "Thing" and thing.size == 3  # type: ignore[attr-defined]
    assert registry.get("thing") is thing


def test_an_object_target_is_returned_as_registered() -> None:
    registry: Registry[object] = Registry("tool")
    spec = object()
    registry.register("spec", spec)
    registry.register("cls", ConfigError)
    assert registry.get("spec") is spec and registry.get("cls") is ConfigError


def test_duplicates_are_refused_and_the_first_entry_kept(plugin_module: str) -> None:
    registry: Registry[type] = Registry("widget")
    registry.register("thing", f"{plugin_module}:Thing")
    with pytest.raises(KeyError, match=rf"widget 'thing' is already registered \({plugin_module}:Thing\)"):
        registry.register("thing", "elsewhere:Other")
    registry.register("error", ConfigError)
    with pytest.raises(KeyError, match=r"'error' is already registered \(assistant.errors:ConfigError\)"):
        registry.register("error", ValueError)
    assert registry.get("error") is ConfigError
    assert registry.get("thing").__module__ == plugin_module


def test_unknown_names_list_the_known_ones_in_registration_order() -> None:
    registry: Registry[object] = Registry("gadget")
    for name in ("zeta", "alpha", "mid"):
        registry.register(name, object())
    with pytest.raises(UnknownNameError) as caught:
        registry.get("alpah")
    error = caught.value
    assert error.message == "unknown gadget 'alpah'"
    assert error.hint == "known: zeta, alpha, mid"
    # A user's typo (a ConfigError the CLI reports) and a failed lookup (a KeyError) at once.
    assert isinstance(error, ConfigError) and isinstance(error, KeyError)
    assert str(error) == "unknown gadget 'alpah'\n  hint: known: zeta, alpha, mid"
    assert list(registry) == ["zeta", "alpha", "mid"] and len(registry) == 3


@pytest.mark.parametrize("target", ["no_colon", ":Class", "module:", ""])
def test_a_string_target_must_name_module_and_attribute(target: str) -> None:
    registry: Registry[object] = Registry("metric")
    with pytest.raises(ValueError, match="metric target must be 'module:Class'"):
        registry.register("m", target)
    assert registry.names() == []


def test_a_target_that_is_not_in_its_module_says_which(plugin_module: str) -> None:
    registry: Registry[object] = Registry("widget")
    registry.register("ghost", f"{plugin_module}:Ghost")
    with pytest.raises(ImportError, match=rf"widget 'ghost': module {plugin_module} has no 'Ghost'"):
        registry.get("ghost")


def test_a_copy_is_independent_of_the_original() -> None:
    original: Registry[object] = Registry("tool")
    original.register("a", 1)
    twin = original.copy()
    twin.register("b", 2)
    assert original.names() == ["a"] and twin.names() == ["a", "b"]
    assert twin.get("a") == 1


def test_the_built_in_registries_name_everything_without_heavy_imports() -> None:
    """Listing strategies, backends, metrics, tools and verifiers imports no model library."""
    code = (
        "import sys\n"
        "from assistant.backends.base import backend_names\n"
        "from assistant.strategies.base import strategy_names\n"
        "from assistant.strategies.tools import tool_names\n"
        "from assistant.strategies.verifiers import verifier_names\n"
        "from evaluation.metrics.base import metric_names\n"
        "print(backend_names(), strategy_names(), tool_names(), verifier_names(), len(metric_names()))\n"
        "heavy = ('torch', 'transformers', 'openai', 'ragas', 'langgraph', 'langchain_core', 'jsonschema')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    names, heavy = result.stdout.splitlines()
    assert names == (
        "['fake', 'hf_local', 'llama_cpp', 'openai_compat'] "
        "['prompt', 'fewshot', 'reflection', 'rag', 'agent', 'route', 'delegate'] "
        "['calculator', 'kb_search', 'sql_query'] ['json_schema', 'regex', 'labels', 'mcq', 'sql'] 14"
    )
    assert heavy == "[]"
