"""Reading request bodies safely: JSON with a nesting limit and one-line errors, images in base64."""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import Request

from visual_search.serving.http.errors import BadInput

MAX_DEPTH = 32  # arrays and objects inside each other: no request of this API needs more than 3


def nesting_depth(value: object) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (a scalar: 0)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


async def json_body(request: Request, max_depth: int = MAX_DEPTH) -> object:
    """The request's JSON body; BadInput (400, one line, no echo of the input) when it is not valid JSON
    (numbers too long to convert included) or nests deeper than `max_depth`."""
    try:
        body = json.loads(await request.body())
    except RecursionError as e:
        raise BadInput(f"the JSON body nests deeper than {max_depth} levels") from e
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError, and integers over Python's digit limit
        raise BadInput(f"the body is not valid JSON ({str(e).splitlines()[0][:200]})") from e
    if nesting_depth(body) > max_depth:
        raise BadInput(f"the JSON body nests deeper than {max_depth} levels")
    return body


def decode_base64(value: str) -> bytes:
    """The bytes of a base64 string or a `data:` URL; BadInput when it is neither."""
    encoded = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadInput(f"'image' is not valid base64 ({e})") from e
