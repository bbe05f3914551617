"""Byte I/O of a session after its setup: write commands, read replies in order (RFC 2920).

aiosmtplib's protocol holds one reply at a time and drops bytes that arrive while no command
waits (aiosmtplib 5.1: `SMTPProtocol.data_received`), so it cannot carry a pipelined stream,
where the replies to MAIL, RCPT and DATA arrive together. `ReplyStream` is the small protocol
that can: every complete reply is queued in arrival order and `reply()` returns the next one,
whether it arrived before it was asked for or after. The session is opened, upgraded and
authenticated by aiosmtplib; `ReplyStream.adopt` then takes over its transport (asyncio's
public `set_protocol`).

`split_replies` is the pure parser, tested without a socket.
"""

from __future__ import annotations

import asyncio
from collections import deque

from aiosmtplib import SMTPResponse, SMTPResponseException, SMTPServerDisconnected

__all__ = ["MAX_REPLY_BYTES", "ReplyStream", "split_replies"]

# A whole reply, continuation lines included; a server that streams more without finishing a
# reply is broken (aiosmtplib bounds it the same way: 4 × 8192).
MAX_REPLY_BYTES = 32768
_MALFORMED = -1  # aiosmtplib's code for a reply it cannot parse (classified as transient)
_CLOSING = 421  # RFC 5321 §3.8: the server is closing the channel; nothing later is meaningful


def split_replies(buffer: bytearray) -> list[SMTPResponse]:
    """Take every complete reply off the front of `buffer`; a partial one stays for later.

    A reply is one or more lines `CODE-text` ending with a line `CODE text` (RFC 5321 §4.2);
    its message is the texts joined by newlines, as aiosmtplib gives it.
    """
    last = buffer.rfind(b"\n")
    if last == -1:
        if len(buffer) > MAX_REPLY_BYTES:
            del buffer[:]
            raise SMTPResponseException(_MALFORMED, "SMTP reply too long")
        return []
    # One copy and one split for all the complete lines (a pipelined read brings several),
    # and one cut off the buffer at the end: this runs once per read in the send loop.
    replies: list[SMTPResponse] = []
    texts: list[bytes] = []
    consumed = 0
    position = 0
    for line in bytes(buffer[: last + 1]).split(b"\n")[:-1]:
        position += len(line) + 1
        try:
            code = int(line[:3])
        except ValueError:
            del buffer[:]
            text = line.decode("utf-8", "replace").strip()
            raise SMTPResponseException(_MALFORMED, f"Malformed SMTP reply line: {text}") from None
        texts.append(line[4:].strip(b" \t\r"))
        if line[3:4] != b"-":
            message = texts[0] if len(texts) == 1 else b"\n".join(texts)
            replies.append(SMTPResponse(code, message.decode("utf-8", "surrogateescape")))
            texts = []
            consumed = position
    del buffer[:consumed]
    if len(buffer) > MAX_REPLY_BYTES:
        del buffer[:]
        raise SMTPResponseException(_MALFORMED, "SMTP reply too long")
    return replies


class ReplyStream(asyncio.Protocol):
    """A session's transport with its replies queued in order; writes go out as given.

    Errors are aiosmtplib's (`SMTPServerDisconnected`, `SMTPResponseException`), so that the one
    classifier reads them as it reads every other failure.
    """

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._buffer = bytearray()
        self._replies: deque[SMTPResponse] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: SMTPResponseException | None = None
        self._lost: BaseException | None = None
        self._closed = False
        self._paused = False
        self._drained: asyncio.Future[None] | None = None

    @classmethod
    def adopt(cls, transport: asyncio.BaseTransport) -> ReplyStream:
        """Take over a connected transport: its next bytes come here (asyncio `set_protocol`)."""
        if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            raise SMTPServerDisconnected("Connection lost")
        stream = cls()
        transport.set_protocol(stream)
        stream.connection_made(transport)
        return stream

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._error is not None:
            return
        self._buffer += data
        try:
            replies = split_replies(self._buffer)
        except SMTPResponseException as exc:
            self._error = exc
            self.abort()  # out of step for good: nothing later can be paired with a command
            self._wake()
            return
        if replies:
            self._replies.extend(replies)
            self._wake()

    def eof_received(self) -> bool:
        return False  # the server is done: close our side too (connection_lost follows)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._lost = exc
        self._transport = None
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # the session's side

    @property
    def is_open(self) -> bool:
        """Connected and in step: a command written now gets its own reply."""
        transport = self._transport
        return transport is not None and not transport.is_closing() and self._error is None

    @property
    def unsolicited(self) -> bool:
        """Bytes arrived that no command asked for (e.g. an idle timeout's 421): out of step."""
        return bool(self._replies or self._buffer)

    def write(self, data: bytes) -> None:
        """Hand bytes to the transport (one `send` when the socket takes them at once)."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._error is not None:
            raise self._disconnected()
        transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport holds more than its high-water mark (a slow reader)."""
        while self._paused and not self._closed:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    async def reply(self) -> SMTPResponse:
        """The next reply in arrival order; replies that came before a hang-up are still read."""
        while not self._replies:
            if self._error is not None:
                raise SMTPResponseException(self._error.code, self._error.message)
            if self._closed:
                raise self._disconnected()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        reply = self._replies.popleft()
        if reply.code == _CLOSING:
            # like aiosmtplib: hang up too; later replies of a pipelined group read as lost
            self._replies.clear()
            self._closed = True
            self.abort()
        return reply

    def close(self) -> None:
        """Close after what was written is flushed (after QUIT)."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection now: the dialogue is out of step or no longer wanted."""
        if self._transport is not None:
            self._transport.abort()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _disconnected(self) -> SMTPServerDisconnected:
        error = SMTPServerDisconnected("Connection lost")
        error.__cause__ = self._lost
        return error
