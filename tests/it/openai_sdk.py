"""The official `openai` Python SDK against the gateway's /v1/chat/completions.

Usage: openai_sdk.py <base_url> <token>. Prints one line per check for the Rust test to assert
(`NONSTREAM {json}`, `STREAM {json}`, `AUTH <exception class>`); exits non-zero on failure.
"""

import json
import sys

import openai
from openai import OpenAI


def main() -> int:
    base_url, token = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=20)

    done = client.chat.completions.create(
        model="moltbot",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Say hello"},
        ],
    )
    choice = done.choices[0]
    print("NONSTREAM " + json.dumps({
        "id": done.id,
        "object": done.object,
        "model": done.model,
        "role": choice.message.role,
        "content": choice.message.content,
        "finish_reason": choice.finish_reason,
        "total_tokens": done.usage.total_tokens if done.usage else None,
    }), flush=True)

    stream = client.chat.completions.create(
        model="moltbot:main",
        stream=True,
        messages=[{"role": "user", "content": "Stream something"}],
    )
    parts, roles, ids = [], [], set()
    for chunk in stream:
        ids.add(chunk.id)
        delta = chunk.choices[0].delta
        if delta.role:
            roles.append(delta.role)
        if delta.content:
            parts.append(delta.content)
    print("STREAM " + json.dumps({
        "content": "".join(parts),
        "deltas": len(parts),
        "roles": roles,
        "ids": len(ids),
    }), flush=True)

    wrong = OpenAI(base_url=base_url, api_key="not-the-token", max_retries=0, timeout=20)
    try:
        wrong.chat.completions.create(
            model="moltbot", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.AuthenticationError as e:
        print(f"AUTH {type(e).__name__} {e.status_code}", flush=True)
    else:
        print("AUTH no error raised", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
