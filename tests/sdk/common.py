"""Shared by the SDK client scripts: input, output, error capture."""

import json
import sys
import traceback


def read_input():
    return json.load(sys.stdin)


def write_results(results):
    # default=str: an SDK object the script kept whole (a datetime, an enum) prints as text.
    json.dump({"results": results}, sys.stdout, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def failure(case, error):
    """A result for a case whose call raised: what the client saw."""
    status = getattr(error, "status_code", None)
    body = getattr(error, "body", None)
    response = getattr(error, "response", None)
    headers = dict(response.headers) if response is not None else {}
    response_json = None
    if response is not None:
        try:
            response_json = json.loads(response.text)
        except Exception:  # not JSON, or not read
            response_json = None
    return {
        "id": case.get("id"),
        "ok": False,
        "status": status,
        "error": str(error),
        "error_type": type(error).__name__,
        "error_body": body if isinstance(body, (dict, list, str)) else None,
        # The reply's body as the gateway sent it (the SDKs unwrap "error").
        "response_json": response_json,
        "headers": headers,
        "trace": traceback.format_exc(limit=3),
    }


def run_cases(cases, one):
    results = []
    for case in cases:
        try:
            results.append(one(case))
        except Exception as error:  # the test asserts on the failure
            results.append(failure(case, error))
    return results
