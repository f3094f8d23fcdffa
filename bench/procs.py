"""Processes for the bench: start them pinned to CPUs, wait for health, measure, stop them by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

__all__ = ["Pinning", "Process", "free_port", "tree_pids", "tree_rss_mb", "wait_healthy"]


class Pinning:
    """CPU lists for the gateway and for the mock + load client (taskset), or no pinning."""

    def __init__(self, gateway_cpus: str, load_cpus: str) -> None:
        usable = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
        self.gateway_cpus = gateway_cpus if usable else ""
        self.load_cpus = load_cpus if usable else ""

    def wrap(self, cpus: str, argv: list[str]) -> list[str]:
        return ["taskset", "-c", cpus, *argv] if cpus else argv

    def describe(self) -> str:
        if not self.gateway_cpus:
            return "no CPU pinning (taskset missing or a single CPU)"
        return f"gateway on CPU {self.gateway_cpus}; mock and load client on CPU {self.load_cpus}"


class Process:
    """A child process we started; stopped by its PID (and its descendants') only."""

    def __init__(
        self, argv: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
    ):
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, env=env)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        pids = tree_pids(self.pid)
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.popen.wait()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def tree_pids(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/<pid>/task/*/children)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", "rb") as fh:
                    pending.extend(int(child) for child in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB, summed over the process tree."""
    rss = peak = 0
    for current in tree_pids(pid):
        try:
            with open(f"/proc/{current}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        peak += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return rss / 1024, peak / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: Process, timeout: float = 60.0) -> float:
    """Poll url until it answers 200; seconds since the process started. Exits when it dies first."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if not process.alive():
            sys.exit(f"bench: {process.log_path.name} exited early:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - process.started
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"bench: {url} not healthy after {timeout:.0f} s:\n{process.log_tail()}")
