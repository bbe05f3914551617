"""Postfix's `smtp-sink` and `smtp-source` for tests and benchmarks, without running Postfix.

    .venv/bin/python -m tools.postfix        # fetch (once) and print where the binaries are

`smtp-sink` is the relay the PIPELINING tests and the benchmarks need: aiosmtpd does not offer
PIPELINING, smtp-sink does (and discards what it receives, in C, using little CPU).
`smtp-source` is the benchmarks' baseline client. Both come from Debian's `postfix` package:
`apt-get download postfix` (no install, no Postfix running), `dpkg -x` into `var/postfix/`, and
`LD_LIBRARY_PATH` pointing at its `usr/lib/postfix`. The first call fetches; later calls reuse
the unpacked tree. A clean clone (CI) fetches on first use; `apt-get update` runs first when the
package lists do not know the package yet.

`SinkProcess` runs smtp-sink on 127.0.0.1 port 0 and finds the port the kernel chose from
`/proc` (smtp-sink does not print it), so that parallel runs never collide.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["CACHE", "PostfixTools", "PostfixUnavailable", "SinkProcess", "postfix_tools"]

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "var" / "postfix"
_TOOLS = ("smtp-sink", "smtp-source")


class PostfixUnavailable(RuntimeError):
    """The postfix package could not be fetched or unpacked here (no apt, no network)."""


@dataclass(frozen=True)
class PostfixTools:
    """The unpacked package: `command("smtp-sink", ...)` with `env` runs a tool from it."""

    root: Path

    @property
    def env(self) -> dict[str, str]:
        library = str(self.root / "usr/lib/postfix")
        return {**os.environ, "LD_LIBRARY_PATH": library}

    def command(self, tool: str, *args: str) -> list[str]:
        return [str(self.root / "usr/sbin" / tool), *args]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def _fetch(cache: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise PostfixUnavailable("apt-get and dpkg are needed to fetch Debian's postfix package")
    download = cache / "download"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    got = _run(["apt-get", "download", "postfix"], download)
    if got.returncode != 0:
        # a fresh machine may not have the package lists yet
        _run(["apt-get", "update"], download)
        got = _run(["apt-get", "download", "postfix"], download)
    debs = sorted(download.glob("postfix_*.deb"))
    if got.returncode != 0 or not debs:
        raise PostfixUnavailable(f"apt-get download postfix failed: {got.stderr.strip()[-300:]}")
    staging = cache / "root.partial"
    shutil.rmtree(staging, ignore_errors=True)
    unpacked = _run(["dpkg", "-x", str(debs[-1]), str(staging)], download)
    if unpacked.returncode != 0:
        raise PostfixUnavailable(f"dpkg -x failed: {unpacked.stderr.strip()[-300:]}")
    staging.rename(cache / "root")
    shutil.rmtree(download, ignore_errors=True)


def postfix_tools(cache: Path = CACHE) -> PostfixTools:
    """The cached package, fetched first when needed; `PostfixUnavailable` when impossible."""
    tools = PostfixTools(cache / "root")
    if all((tools.root / "usr/sbin" / tool).exists() for tool in _TOOLS):
        return tools
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes never fetch at once
        if not (tools.root / "usr/sbin/smtp-sink").exists():
            _fetch(cache)
    for tool in _TOOLS:
        if not (tools.root / "usr/sbin" / tool).exists():
            raise PostfixUnavailable(f"{tool} is not in the postfix package under {tools.root}")
    return tools


def _listening_port(pid: int) -> int | None:
    """The TCP port a process listens on, from its socket inodes and /proc/net/tcp."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            return int(fields[1].rsplit(":", 1)[1], 16)
    return None


class SinkProcess:
    """smtp-sink on 127.0.0.1, port 0; `args` are its options (e.g. `-q .`, `-d template`)."""

    def __init__(self, tools: PostfixTools, *args: str, backlog: int = 64) -> None:
        self.tools = tools
        self.args = args
        self.backlog = backlog
        self.host = "127.0.0.1"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SinkProcess:
        user = ("-u", "nobody") if os.geteuid() == 0 else ()  # smtp-sink refuses to run as root
        command = self.tools.command(
            "smtp-sink", *user, *self.args, f"{self.host}:0", str(self.backlog)
        )
        self.process = subprocess.Popen(
            command, env=self.tools.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise PostfixUnavailable(f"smtp-sink exited at once: {error.strip()}")
            port = _listening_port(self.process.pid)
            if port:
                self.port = port
                return self
            time.sleep(0.02)
        self.stop()
        raise PostfixUnavailable("smtp-sink did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> SinkProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    found = postfix_tools()
    print(found.root)
    sys.exit(0)
