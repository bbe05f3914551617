"""The reply parser of the pipelined stream, without a socket: replies split where they end."""

from __future__ import annotations

import pytest
from aiosmtplib import SMTPResponse, SMTPResponseException
from hypothesis import given
from hypothesis import strategies as st

from jobs.smtp.wire import MAX_REPLY_BYTES, split_replies


def test_several_replies_in_one_read_are_all_taken() -> None:
    buffer = bytearray(b"250 2.0.0 Ok: queued\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End\r\n")
    assert split_replies(buffer) == [
        SMTPResponse(250, "2.0.0 Ok: queued"),
        SMTPResponse(250, "2.1.0 Ok"),
        SMTPResponse(250, "2.1.5 Ok"),
        SMTPResponse(354, "End"),
    ]
    assert buffer == b""


def test_a_partial_reply_waits_for_its_end() -> None:
    buffer = bytearray(b"250-first\r\n250-second\r\n25")
    assert split_replies(buffer) == []
    buffer += b"0 last\r\n550 5.1.1 gone\r\n"
    assert split_replies(buffer) == [
        SMTPResponse(250, "first\nsecond\nlast"),
        SMTPResponse(550, "5.1.1 gone"),
    ]
    assert buffer == b""


def test_a_malformed_line_is_aiosmtplib_s_code_minus_one() -> None:
    with pytest.raises(SMTPResponseException) as caught:
        split_replies(bytearray(b"hello there\r\n"))
    assert caught.value.code == -1


def test_an_endless_reply_is_refused() -> None:
    with pytest.raises(SMTPResponseException, match="too long"):
        split_replies(bytearray(b"250-" + b"x" * MAX_REPLY_BYTES))


@given(
    st.lists(
        st.tuples(
            st.integers(200, 599),
            st.lists(st.text("abc .-:", min_size=1, max_size=20), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=5,
    ),
    st.data(),
)
def test_any_split_of_the_bytes_gives_the_same_replies(
    replies: list[tuple[int, list[str]]], data: st.DataObject
) -> None:
    wire = b""
    for code, texts in replies:
        lines = [f"{code}-{t}" for t in texts[:-1]] + [f"{code} {texts[-1]}"]
        wire += "".join(line + "\r\n" for line in lines).encode()
    cut = data.draw(st.integers(0, len(wire)))
    buffer = bytearray(wire[:cut])
    got = split_replies(buffer)
    buffer += wire[cut:]
    got += split_replies(buffer)
    expected = [SMTPResponse(c, "\n".join(t.strip(" \t") for t in texts)) for c, texts in replies]
    assert got == expected
