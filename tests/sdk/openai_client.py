"""Drives the gateway with the official OpenAI Python SDK (see README.md)."""

import asyncio
import inspect
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import openai  # noqa: E402

from common import failure, read_input, run_cases, write_results  # noqa: E402

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

ANSWER_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    },
}


def messages(case):
    return [{"role": "user", "content": case.get("prompt", "Say hello in one short sentence.")}]


def request_args(case):
    args = {"model": case.get("model", "auto"), "messages": messages(case)}
    kind = case["kind"]
    if kind == "tools":
        args["tools"] = [WEATHER_TOOL]
        args["messages"] = [{"role": "user", "content": "What is the weather in Paris?"}]
    elif kind == "structured":
        args["response_format"] = ANSWER_SCHEMA
    if "max_tokens" in case:
        args["max_tokens"] = case["max_tokens"]
    return args


def result(case, raw, completion, text):
    usage = completion.usage.model_dump() if getattr(completion, "usage", None) else None
    choice = completion.choices[0] if completion.choices else None
    tool_calls = []
    if choice is not None and choice.message.tool_calls:
        tool_calls = [
            {"name": c.function.name, "arguments": c.function.arguments}
            for c in choice.message.tool_calls
        ]
    parsed = None
    if case["kind"] == "structured" and text:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    return {
        "id": case.get("id"),
        "ok": True,
        "status": raw.status_code,
        "text": text,
        "model": completion.model,
        "tool_calls": tool_calls,
        "parsed": parsed,
        "usage": usage,
        "headers": dict(raw.headers),
    }


def plain(client, case):
    raw = client.chat.completions.with_raw_response.create(
        **request_args(case), extra_headers=case.get("headers", {})
    )
    completion = raw.parse()
    choice = completion.choices[0]
    return result(case, raw, completion, choice.message.content)


def stream(client, case):
    args = request_args(case)
    raw = client.chat.completions.with_raw_response.create(
        **args, stream=True, extra_headers=case.get("headers", {})
    )
    text, model, usage, chunks = [], None, None, 0
    for chunk in raw.parse():
        chunks += 1
        model = chunk.model or model
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            if choice.delta and choice.delta.content:
                text.append(choice.delta.content)
    return {
        "id": case.get("id"),
        "ok": True,
        "status": raw.status_code,
        "text": "".join(text),
        "model": model,
        "chunks": chunks,
        "usage": usage,
        "headers": dict(raw.headers),
    }


async def concurrent(config, case):
    client = openai.AsyncOpenAI(
        base_url=config["base_url"],
        api_key=config["api_key"],
        default_headers=config.get("default_headers") or None,
        max_retries=0,
        timeout=30,
    )

    async def one(i):
        headers = dict(case.get("headers", {}))
        headers["x-test-id"] = f"{case['id']}-{i}"
        try:
            raw = await client.chat.completions.with_raw_response.create(
                **request_args({**case, "kind": case.get("of", "plain")}), extra_headers=headers
            )
            completion = raw.parse()
            if inspect.isawaitable(completion):  # newer SDKs parse async responses async
                completion = await completion
            return result({**case, "id": headers["x-test-id"]}, raw, completion,
                          completion.choices[0].message.content)
        except Exception as error:  # reported, not raised
            return failure({"id": headers["x-test-id"]}, error)

    try:
        return await asyncio.gather(*(one(i) for i in range(case.get("n", 8))))
    finally:
        await client.close()


def main():
    config = read_input()
    client = openai.OpenAI(
        base_url=config["base_url"],
        api_key=config["api_key"],
        default_headers=config.get("default_headers") or None,
        max_retries=0,
        timeout=30,
    )
    kinds = {"plain": plain, "tools": plain, "structured": plain, "stream": stream}
    results = []
    for case in config["cases"]:
        if case["kind"] == "concurrent":
            results.extend(asyncio.run(concurrent(config, case)))
        else:
            results.extend(run_cases([case], lambda c: kinds[c["kind"]](client, c)))
    write_results(results)


if __name__ == "__main__":
    main()
