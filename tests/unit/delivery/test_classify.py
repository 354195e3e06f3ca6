"""libcurl's result and the answer's state → the attempt's outcome (``sender.classify``)."""

from __future__ import annotations

import pycurl
import pytest

from callhook.delivery._head import Answer
from callhook.delivery._transport import Exchange
from callhook.delivery.sender import classify

LIMIT = "no complete response within 2 s"


def answered(status: bytes = b"503 x", body: bytes = b"", limit: int = 4096) -> Answer:
    answer = Answer(limit)
    for line in (b"HTTP/1.1 " + status + b"\r\n", b"Retry-After: 7\r\n", b"\r\n"):
        assert answer.on_header(line) is None
    if body:
        answer.on_body(body)
    return answer


def head_only(status: bytes = b"503 x") -> Answer:
    answer = Answer(4096)
    answer.on_header(b"HTTP/1.1 " + status + b"\r\n")
    return answer


@pytest.mark.parametrize(
    ("errno", "message", "answer", "error_class"),
    [
        (pycurl.E_OPERATION_TIMEDOUT, "Operation timed out", Answer(4096), "timeout"),
        (pycurl.E_OPERATION_TIMEDOUT, "Operation timed out", head_only(), "timeout"),
        (pycurl.E_PEER_FAILED_VERIFICATION, "SSL certificate problem", Answer(4096), "tls_error"),
        (pycurl.E_SSL_CONNECT_ERROR, "handshake failure", Answer(4096), "tls_error"),
        (pycurl.E_COULDNT_CONNECT, "Connection refused", Answer(4096), "connect_error"),
        (pycurl.E_GOT_NOTHING, "Empty reply from server", Answer(4096), "connect_error"),
        (pycurl.E_RECV_ERROR, "Connection reset by peer", head_only(), "connect_error"),
        (
            pycurl.E_RECV_ERROR,
            "chunk hex-length char not a hex digit: 0x7a",
            answered(),
            "connect_error",
        ),
        (pycurl.E_UNSUPPORTED_PROTOCOL, "Unsupported protocol", Answer(4096), "connect_error"),
    ],
)
def test_no_complete_answer_is_a_failure_without_status(
    errno: int, message: str, answer: Answer, error_class: str
) -> None:
    verdict = classify(Exchange(errno, message, answer), timeout_message=LIMIT)
    assert not verdict.answered
    assert (verdict.outcome.error_class, verdict.outcome.status_code) == (error_class, None)
    if error_class == "timeout":
        assert verdict.outcome.message == LIMIT
    else:
        assert verdict.outcome.message == f"curl error {errno}: {message}"


def test_a_refused_head_is_a_connect_error_naming_the_problem() -> None:
    answer = Answer(4096)
    answer.on_header(b"HTTP/2 200\r\n")
    verdict = classify(
        Exchange(pycurl.E_WRITE_ERROR, "Failure writing", answer), timeout_message=LIMIT
    )
    assert not verdict.answered
    assert verdict.outcome.error_class == "connect_error"
    assert verdict.outcome.message == "malformed response: not an HTTP/1.1 status line: HTTP/2 200"


@pytest.mark.parametrize(
    ("errno", "message", "answer", "note"),
    [
        (0, "", answered(), None),
        (pycurl.E_WRITE_ERROR, "Failure writing output", answered(body=b"x" * 5000), None),
        (
            pycurl.E_OPERATION_TIMEDOUT,
            "Operation timed out",
            answered(body=b"xx"),
            "response body not complete within the time limit",
        ),
        (
            pycurl.E_PARTIAL_FILE,
            "end of response with 97 bytes missing",
            answered(body=b"abc"),
            "response body cut short: curl error 18: end of response with 97 bytes missing",
        ),
        (
            pycurl.E_RECV_ERROR,
            "Malformed encoding found in chunked-encoding",
            answered(body=b"abc"),
            "response body cut short: curl error 56: Malformed encoding found in chunked-encoding",
        ),
    ],
)
def test_after_a_complete_head_the_status_stands(
    errno: int, message: str, answer: Answer, note: str | None
) -> None:
    verdict = classify(Exchange(errno, message, answer), timeout_message=LIMIT)
    assert verdict.answered
    assert (verdict.outcome.error_class, verdict.outcome.status_code) == ("http_status", 503)
    assert verdict.note == note


def test_a_2xx_is_delivered() -> None:
    verdict = classify(Exchange(0, "", answered(b"204 No Content")), timeout_message=LIMIT)
    assert verdict.answered
    assert verdict.outcome.delivered
