"""Drives the router with the official SDKs across API families.

Reads {"base_url": "http://127.0.0.1:PORT", "cases": [...]} on stdin; each
case is {"id", "sdk": "openai" | "anthropic", "kind", "model", "headers"}.
Prints {"results": [...]}, one per case, in order. A call that raises is a
result with "ok": false (common.failure: status, error type, the reply as
sent in "response_json"), never a crash.

Kinds (openai): plain, multi_turn, image, tools, structured, stream,
stream_tools, error, models, responses, responses_stream.
Kinds (anthropic): plain, multi_turn, image, tools, structured, stream,
stream_tools, error, models.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anthropic  # noqa: E402
import openai  # noqa: E402

from common import read_input, run_cases, write_results  # noqa: E402

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
       "hKmMIQAAAABJRU5ErkJggg==")
WEATHER_OPENAI = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WEATHER_ANTHROPIC = {"name": "get_weather", "description": "Current weather of a city",
                     "input_schema": WEATHER_OPENAI["function"]["parameters"]}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}


def usage_of(u):
    return u.model_dump() if u is not None else None


def openai_case(client, case):
    kind, model, h = case["kind"], case.get("model", "auto"), case.get("headers", {})
    chat = client.chat.completions
    out = {}
    if kind in ("plain", "multi_turn", "image", "structured", "error"):
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]
        extra = {}
        if kind == "multi_turn":
            messages += [{"role": "assistant", "content": "Hi, how can I help?"},
                         {"role": "user", "content": "Tell me a joke."}]
        if kind == "image":
            messages[1]["content"] = [
                {"type": "text", "text": "What is in these images?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
        if kind == "structured":
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}}
        raw = chat.with_raw_response.create(model=model, messages=messages, extra_headers=h, **extra)
        r = raw.parse()
        out.update(text=r.choices[0].message.content, finish_reason=r.choices[0].finish_reason,
                   usage=usage_of(r.usage), object=r.object, headers=dict(raw.headers))
    elif kind == "tools":
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        first = chat.create(model=model, messages=messages, tools=[WEATHER_OPENAI],
                            extra_headers={**h, "x-mock-tool-call": "get_weather"})
        msg = first.choices[0].message
        calls = [c.model_dump() for c in msg.tool_calls or []]
        messages.append({"role": "assistant", "content": msg.content, "tool_calls": calls})
        for c in msg.tool_calls or []:
            messages.append({"role": "tool", "tool_call_id": c.id, "content": "18C and sunny"})
        second = chat.create(model=model, messages=messages, tools=[WEATHER_OPENAI], extra_headers=h)
        out.update(tool_calls=calls, finish_reason=first.choices[0].finish_reason,
                   text=second.choices[0].message.content, usage=usage_of(second.usage))
    elif kind in ("stream", "stream_tools"):
        extra = {}
        headers = dict(h)
        if kind == "stream_tools":
            extra["tools"] = [WEATHER_OPENAI]
            headers["x-mock-tool-call"] = "get_weather"
        with chat.stream(model=model, messages=[{"role": "user", "content": "Hello!"}],
                         stream_options={"include_usage": True}, extra_headers=headers, **extra) as s:
            chunks = sum(1 for _ in s)
            final = s.get_final_completion()
        m = final.choices[0].message
        out.update(text=m.content, chunks=chunks, finish_reason=final.choices[0].finish_reason,
                   tool_calls=[c.model_dump() for c in m.tool_calls or []], usage=usage_of(final.usage))
    elif kind == "models":
        out.update(ids=[m.id for m in client.models.list()])
        out.update(one=client.models.retrieve(case["retrieve"]).id)
    elif kind == "responses":
        r = client.responses.create(model=model, instructions="Be brief.", input="Hello!", extra_headers=h)
        out.update(text=r.output_text, status=r.status, usage=usage_of(r.usage), object=r.object)
    elif kind == "responses_stream":
        with client.responses.stream(model=model, input=[{"role": "user", "content": "Hello!"}], extra_headers=h) as s:
            types = [e.type for e in s]
            final = s.get_final_response()
        out.update(text=final.output_text, events=types, usage=usage_of(final.usage))
    else:
        raise ValueError(kind)
    return out


def anthropic_case(client, case):
    kind, model, h = case["kind"], case.get("model", "auto"), case.get("headers", {})
    msgs = client.messages
    out = {}
    base = dict(model=model, max_tokens=64)
    if kind in ("plain", "multi_turn", "image", "structured", "error"):
        messages = [{"role": "user", "content": "Hello!"}]
        extra = {}
        if kind == "multi_turn":
            messages += [{"role": "assistant", "content": "Hi, how can I help?"},
                         {"role": "user", "content": "Tell me a joke."}]
        if kind == "image":
            messages[0]["content"] = [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "text", "text": "What is in these images?"}]
        if kind == "structured":
            extra["extra_body"] = {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}
        raw = msgs.with_raw_response.create(system="Be brief.", messages=messages, extra_headers=h, **base, **extra)
        r = raw.parse()
        out.update(text="".join(b.text for b in r.content if b.type == "text"), stop_reason=r.stop_reason,
                   usage=usage_of(r.usage), type=r.type, headers=dict(raw.headers))
    elif kind == "tools":
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        first = msgs.create(messages=messages, tools=[WEATHER_ANTHROPIC],
                            extra_headers={**h, "x-mock-tool-call": "get_weather"}, **base)
        uses = [b for b in first.content if b.type == "tool_use"]
        messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": b.id, "content": "18C and sunny"} for b in uses]})
        second = msgs.create(messages=messages, tools=[WEATHER_ANTHROPIC], extra_headers=h, **base)
        out.update(tool_calls=[{"id": b.id, "name": b.name, "input": b.input} for b in uses],
                   stop_reason=first.stop_reason,
                   text="".join(b.text for b in second.content if b.type == "text"), usage=usage_of(second.usage))
    elif kind in ("stream", "stream_tools"):
        extra = {}
        headers = dict(h)
        if kind == "stream_tools":
            extra["tools"] = [WEATHER_ANTHROPIC]
            headers["x-mock-tool-call"] = "get_weather"
        with msgs.stream(messages=[{"role": "user", "content": "Hello!"}], extra_headers=headers, **base, **extra) as s:
            events = [e.type for e in s]
            final = s.get_final_message()
        out.update(text="".join(b.text for b in final.content if b.type == "text"), events=events,
                   stop_reason=final.stop_reason, usage=usage_of(final.usage),
                   tool_calls=[{"id": b.id, "name": b.name, "input": b.input} for b in final.content if b.type == "tool_use"])
    elif kind == "models":
        out.update(ids=[m.id for m in client.models.list()])
    else:
        raise ValueError(kind)
    return out


def main():
    spec = read_input()
    base = spec["base_url"].rstrip("/")
    oa = openai.OpenAI(base_url=base + "/v1", api_key="test-key", max_retries=0)
    an = anthropic.Anthropic(base_url=base, api_key="test-key", max_retries=0)

    def one(case):
        out = openai_case(oa, case) if case["sdk"] == "openai" else anthropic_case(an, case)
        return {**out, "id": case["id"], "ok": True}

    write_results(run_cases(spec["cases"], one))


if __name__ == "__main__":
    main()
