"""The response head as libcurl hands it over, line by line: what is an answer, what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhook.delivery._head import MAX_HEADERS, Answer


def feed(*lines: bytes, limit: int = 4096) -> Answer:
    answer = Answer(limit)
    for line in lines:
        if answer.on_header(line) is not None:
            break
    return answer


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"HTTP/1.1 200 OK\r\n", 200),
        (b"HTTP/1.0 503 Service Unavailable\r\n", 503),
        (b"HTTP/1.1 204\r\n", 204),
        (b"HTTP/1.1 000 Zero\r\n", 0),
        (b"HTTP/1.1 999 Odd\r\n", 999),
        (b"HTTP/1.1 503 \xe9\xff\xfe\r\n", 503),
    ],
)
def test_any_three_digits_are_a_status(line: bytes, status: int) -> None:
    answer = feed(line, b"\r\n")
    assert (answer.status, answer.complete, answer.problem) == (status, True, None)


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/1.1 99 Two digits\r\n",
        b"HTTP/1.1 5030 Four digits\r\n",
        b"HTTP/1.1 -1 Negative\r\n",
        "HTTP/1.1 ５０３ x\r\n".encode(),
        b"HTTP/2 200\r\n",
        b"garbage\r\n",
        b"HTTP/1.1 200 OK\x00\r\n",
    ],
)
def test_a_status_line_that_is_not_http_1_is_refused(line: bytes) -> None:
    answer = Answer(4096)
    assert answer.on_header(line) == -1
    assert answer.problem is not None
    assert answer.problem.startswith("not an HTTP/1.1 status line")


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("Rétry-After: 5".encode(), "not a header line"),
        (b"Retry-After: 5\x00", "a control character in header Retry-After"),
        (b"Retry-After: 5\r5", "a control character in header Retry-After"),
        (b"no colon here", "not a header line"),
        (b": empty name", "not a header line"),
        (b" folded: line", "not a header line"),
        (b"Content-Length: -1", "an unusable Content-Length: -1"),
        (b"Content-Length: " + b"9" * 30, "an unusable Content-Length"),
        (b"X-Big: " + b"a" * 100_000, "a header line longer than 8190 bytes"),
    ],
)
def test_a_malformed_header_aborts(header: bytes, problem: str) -> None:
    answer = Answer(4096)
    assert answer.on_header(b"HTTP/1.1 503 x\r\n") is None
    assert answer.on_header(header + b"\r\n") == -1
    assert answer.problem is not None
    assert answer.problem.startswith(problem)
    assert not answer.complete


def test_more_than_128_headers_abort() -> None:
    answer = feed(b"HTTP/1.1 503 x\r\n", *[b"X-A: b\r\n"] * (MAX_HEADERS + 1))
    assert answer.problem == f"more than {MAX_HEADERS} headers"
    assert feed(b"HTTP/1.1 503 x\r\n", *[b"X-A: b\r\n"] * MAX_HEADERS, b"\r\n").complete


def test_retry_after_is_kept_raw_and_control_bytes_other_than_nul_and_cr_pass() -> None:
    answer = feed(b"HTTP/1.1 503 x\r\n", b"retry-after:  5\x01\x7f \r\n", b"\r\n")
    assert (answer.status, answer.retry_after, answer.complete) == (503, "5\x01\x7f", True)
    latin = feed(b"HTTP/1.1 503 x\r\n", b"Retry-After: \xe9t\xe9\r\n", b"\r\n")
    assert latin.retry_after == "\udce9t\udce9"  # as aiohttp decoded it: never understood


def test_an_interim_answer_is_skipped() -> None:
    answer = feed(
        b"HTTP/1.1 100 Continue\r\n",
        b"Retry-After: 99\r\n",
        b"\r\n",
        b"HTTP/1.1 503 Busy\r\n",
        b"Retry-After: 7\r\n",
        b"\r\n",
    )
    assert (answer.status, answer.retry_after, answer.complete) == (503, "7", True)


def test_trailers_after_the_head_are_not_judged() -> None:
    answer = feed(b"HTTP/1.1 200 OK\r\n", b"\r\n")
    assert answer.on_header(b"\x00 not a header\r\n") is None
    assert answer.problem is None


@given(st.lists(st.binary(min_size=0, max_size=300), max_size=40), st.integers(0, 5000))
def test_the_body_is_kept_to_the_limit_and_stopped_past_it(chunks: list[bytes], limit: int) -> None:
    answer = Answer(limit)
    taken = b""
    for chunk in chunks:
        verdict = answer.on_body(chunk)
        taken += chunk
        if verdict is not None:
            assert verdict == 0  # abort: the first byte past the limit has arrived
            assert len(taken) > limit
            break
    assert bytes(answer.body) == taken[:limit]
    assert answer.enough == (len(taken) > limit)
