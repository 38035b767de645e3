"""A tiny OpenAI-compatible server for tests: stdlib ``http.server`` on 127.0.0.1, replies from a table.

``ChatStub(table, default)`` answers ``POST .../chat/completions`` (and ``.../completions``) with the
reply of the first ``(needle, reply)`` row whose needle occurs in the last user message (the
prompt), else ``default``. Every request payload is kept in ``stub.requests`` (in arrival order)
so a test can check what the backend sent. Use it as a context manager::

    with ChatStub([("Decision 1 of 6", "Answer: E")], default="I value honesty.") as stub:
        ... lm_eval --model local-chat-completions --model_args model=stub,base_url={stub.url} ...
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatStub:
    def __init__(self, table: list[tuple[str, str]], default: str = ""):
        self.table = list(table)
        self.default = default
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- what the server says ------------------------------------------------------------------
    def reply_to(self, prompt: str) -> str:
        for needle, reply in self.table:
            if needle in prompt:
                return reply
        return self.default

    @staticmethod
    def last_user_message(payload: dict) -> str:
        users = [m.get("content", "") for m in payload.get("messages", []) if m.get("role") == "user"]
        content = users[-1] if users else ""
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The chat completions endpoint (``local-chat-completions``)."""
        return self.base + "/chat/completions"

    @property
    def completions_url(self) -> str:
        """The plain completions endpoint (``local-completions``)."""
        return self.base + "/completions"

    @property
    def base(self) -> str:
        assert self._server is not None, "start the stub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "ChatStub":
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_error(400, "body is not JSON")
                    return
                path = self.path.rstrip("/")
                chat = path.endswith("/chat/completions") and isinstance(payload.get("messages"), list)
                plain = not chat and path.endswith("/completions") and "prompt" in payload
                if not (chat or plain):
                    self.send_error(404, "only chat completions (messages) and completions (prompt) are served")
                    return
                with stub._lock:
                    stub.requests.append(payload)
                if chat:
                    text = stub.reply_to(stub.last_user_message(payload))
                    choices = [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
                else:  # a batch of prompts is answered in order
                    prompts = payload["prompt"] if isinstance(payload["prompt"], list) else [payload["prompt"]]
                    choices = [
                        {"index": i, "text": stub.reply_to(str(p)), "finish_reason": "stop"}
                        for i, p in enumerate(prompts)
                    ]
                body = json.dumps(
                    {
                        "id": f"cmpl-{len(stub.requests)}",
                        "object": "chat.completion" if chat else "text_completion",
                        "created": 0,
                        "model": payload.get("model", "stub"),
                        "choices": choices,
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
