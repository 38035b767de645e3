"""A tiny OpenAI-compatible chat server for tests: stdlib ``http.server`` on 127.0.0.1, replies from a table.

``ChatStub(table, default)`` answers ``POST .../chat/completions`` with the reply of the first
``(needle, reply)`` row whose needle occurs in the last user message, else ``default``. Every
request payload is kept in ``stub.requests`` (in arrival order) so a test can check what the
backend sent. Use it as a context manager::

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
        assert self._server is not None, "start the stub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1/chat/completions"

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
                if not self.path.rstrip("/").endswith("/chat/completions") or not isinstance(
                        payload.get("messages"), list):
                    self.send_error(404, "only chat completions with a messages list are served here")
                    return
                with stub._lock:
                    stub.requests.append(payload)
                text = stub.reply_to(stub.last_user_message(payload))
                body = json.dumps({
                    "id": f"chatcmpl-{len(stub.requests)}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": payload.get("model", "stub"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                }).encode()
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
