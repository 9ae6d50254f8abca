from assistant.backends.toolcalls import parse_tool_calls


def test_tagged_calls_are_parsed_and_removed() -> None:
    text = 'Let me check.\n<tool_call>\n{"name": "kb_search", "arguments": {"query": "长城"}}\n</tool_call>'
    rest, calls = parse_tool_calls(text, {"kb_search"})
    assert rest == "Let me check."
    assert calls[0].name == "kb_search" and calls[0].args == {"query": "长城"}


def test_bare_json_and_string_arguments() -> None:
    rest, calls = parse_tool_calls('{"name": "calculator", "arguments": "{\\"expression\\": \\"2+2\\"}"}')
    assert rest == "" and calls[0].args == {"expression": "2+2"}


def test_unknown_tool_and_plain_text_are_left_alone() -> None:
    text = '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'
    assert parse_tool_calls(text, {"calculator"}) == (text, [])
    assert parse_tool_calls("just an answer {not json}") == ("just an answer {not json}", [])
    assert parse_tool_calls('<tool_call>{"name": broken</tool_call>')[1] == []
