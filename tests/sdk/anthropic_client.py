"""Drives the gateway with the official Anthropic Python SDK (see README.md)."""

import asyncio
import inspect
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anthropic  # noqa: E402

from common import failure, read_input, run_cases, write_results  # noqa: E402

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def request_args(case):
    args = {
        "model": case.get("model", "auto"),
        "max_tokens": case.get("max_tokens", 256),
        "messages": [{"role": "user", "content": case.get("prompt", "Say hello in one short sentence.")}],
    }
    if case["kind"] == "tools":
        args["tools"] = [WEATHER_TOOL]
    elif case["kind"] == "structured":
        # Anthropic's structured output: a forced tool call whose input is the object.
        args["tools"] = [WEATHER_TOOL]
        args["tool_choice"] = {"type": "tool", "name": "get_weather"}
    return args


def result(case, raw, message):
    text = "".join(block.text for block in message.content if block.type == "text")
    tool_calls = [
        {"name": block.name, "arguments": block.input}
        for block in message.content
        if block.type == "tool_use"
    ]
    return {
        "id": case.get("id"),
        "ok": True,
        "status": raw.status_code,
        "text": text,
        "model": message.model,
        "tool_calls": tool_calls,
        "usage": message.usage.model_dump() if message.usage else None,
        "headers": dict(raw.headers),
    }


def plain(client, case):
    raw = client.messages.with_raw_response.create(**request_args(case), extra_headers=case.get("headers", {}))
    return result(case, raw, raw.parse())


def stream(client, case):
    text, model, usage, events = [], None, None, 0
    with client.messages.stream(**request_args(case), extra_headers=case.get("headers", {})) as s:
        for event in s:
            events += 1
            if event.type == "text":
                text.append(event.text)
        final = s.get_final_message()
        model = final.model
        usage = final.usage.model_dump() if final.usage else None
        headers = dict(s.response.headers)
        status = s.response.status_code
    return {
        "id": case.get("id"),
        "ok": True,
        "status": status,
        "text": "".join(text),
        "model": model,
        "chunks": events,
        "usage": usage,
        "headers": headers,
    }


async def concurrent(config, case):
    client = anthropic.AsyncAnthropic(
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
            raw = await client.messages.with_raw_response.create(
                **request_args({**case, "kind": case.get("of", "plain")}), extra_headers=headers
            )
            message = raw.parse()
            if inspect.isawaitable(message):  # the async client's raw response parses async
                message = await message
            return result({"id": headers["x-test-id"]}, raw, message)
        except Exception as error:  # reported, not raised
            return failure({"id": headers["x-test-id"]}, error)

    try:
        return await asyncio.gather(*(one(i) for i in range(case.get("n", 8))))
    finally:
        await client.close()


def main():
    config = read_input()
    client = anthropic.Anthropic(
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
