"""A webhook receiver with nothing but the standard library and the receiver SDK.

    pip install ./packages/callhook-receiver          # from a clone of the Callhook repository
    CALLHOOK_WEBHOOK_SECRET=whsec_... python examples/stdlib_receiver.py --port 4000
    # HTTPS, e.g. with a local CA's certificate: add --cert cert.pem --key key.pem

Verifies the signature before anything else (401 otherwise, before the body is read when the
headers alone fail), answers 400 to a verified body that is not a delivery, ignores duplicates
(``event:pbx_id`` in a SQLite file), answers 200 at once and processes on a worker thread.
"""

from __future__ import annotations

import argparse
import json
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from example_handlers import configure_logging, dedup_from_env, process_event, secrets_from_env

from callhook.receiver.background import default_runner
from callhook.receiver.gate import ACCEPTED, Gate, Rejection

#: Deliveries are small JSON documents; refuse anything absurd before reading it.
MAX_BODY = 1024 * 1024


def handler_for(gate: Gate) -> type[BaseHTTPRequestHandler]:
    class WebhookHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/webhook":
                self._answer(404, {"error": "not found"})
                return
            headers = dict(self.headers.items())
            try:
                gate.check_headers(headers)
                length = int(self.headers.get("Content-Length") or "0")
                if not 0 <= length <= MAX_BODY:
                    raise Rejection(413, {"error": "body too large"})
                event = gate.admit(headers, self.rfile.read(length))
            except ValueError:
                self._answer(400, {"error": "bad Content-Length"})
                return
            except Rejection as rejection:
                self._answer(rejection.status, rejection.body)
                return
            default_runner.submit(process_event, event)  # runs after the answer is sent
            self._answer(200, ACCEPTED)

        def _answer(self, status: int, body: dict[str, object]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return WebhookHandler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--cert", help="Serve HTTPS with this certificate (PEM, chain first).")
    parser.add_argument("--key", help="… and this private key (PEM).")
    args = parser.parse_args()
    configure_logging()
    gate = Gate(secrets_from_env(), dedup=dedup_from_env())
    server = ThreadingHTTPServer((args.host, args.port), handler_for(gate))
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if args.cert else "http"
    print(f"listening on {scheme}://{args.host}:{args.port}/webhook", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
