"""The throwaway stack of one benchmark run: its own PostgreSQL, Kafka and service processes.

A benchmark owns everything it measures: its own PostgreSQL (durable, unlike the test
server), its own Kafka and its own service processes, all in a scratch directory that is
removed afterwards, so a run never depends on, or disturbs, a `make run` stack.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from bench.report import say
from claimflow_devstack import processes
from claimflow_devstack.errors import DevstackError, ProcessDiedError
from claimflow_devstack.kafka import KafkaBroker
from claimflow_devstack.paths import state_dir
from claimflow_devstack.postgres import PostgresServer

READY_TIMEOUT = 90.0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # A supervisor's SIGTERM must reach the finally blocks that stop our children.
    raise KeyboardInterrupt


class Stack:
    """PostgreSQL, Kafka and service processes of one benchmark run.

    Everything is started by this object and stopped by PID on exit, newest first, so no
    service outlives the database or broker it talks to.
    """

    def __init__(self, name: str, *, keep: bool = False) -> None:
        self.name = name
        self.dir = state_dir() / f"bench-{os.getpid()}"
        self.keep = keep
        self.postgres: PostgresServer | None = None
        self.kafka: KafkaBroker | None = None
        self.procs: list[processes.ManagedProcess] = []

    def __enter__(self) -> Stack:
        signal.signal(signal.SIGTERM, _interrupt)
        self.dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A second Ctrl-C must not leave half the stack running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if exc is not None and not isinstance(exc, KeyboardInterrupt):
                for proc in self.procs:
                    say(f"--- last lines of {proc.name}:\n{proc.log_tail(15)}")
            for proc in reversed(self.procs):
                processes.stop(proc, 15.0)
            self.procs.clear()
            if self.kafka is not None:
                self.kafka.stop()
            if self.postgres is not None:
                self.postgres.stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if self.keep:
                say(f"kept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def start_postgres(self) -> PostgresServer:
        # fast=False: fsync and synchronous commit stay on, as in production.
        self.postgres = PostgresServer.start(
            self.dir / "postgres", fast=False, log_path=self.log("postgres")
        )
        return self.postgres

    def start_kafka(self) -> KafkaBroker:
        self.kafka = KafkaBroker.start(self.dir / "kafka", log_path=self.log("kafka"))
        return self.kafka

    def run(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        processes.run(name, argv, log_path=self.log(name), timeout=300.0, env=env)

    def spawn(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> processes.ManagedProcess:
        proc = processes.start(name, argv, log_path=self.log(name), env=env)
        self.procs.append(proc)
        return proc

    def wait_ready(
        self, urls: Iterable[str], procs: Sequence[processes.ManagedProcess] | None = None
    ) -> None:
        """Wait until every URL answers 200 (readiness), failing fast if a process dies."""
        watched = list(procs if procs is not None else self.procs)
        deadline = time.monotonic() + READY_TIMEOUT
        for url in urls:
            try:
                processes.wait_ready(url, watched, max(0.0, deadline - time.monotonic()))
            except TimeoutError as exc:
                raise DevstackError(str(exc)) from None

    def check_alive(self) -> None:
        for proc in self.procs:
            if not proc.alive():
                raise ProcessDiedError(proc.died_message("the benchmark was running"))


@dataclass(frozen=True)
class ApiKey:
    """A fresh bearer key; services are given only its digest, as in production."""

    principal: str
    roles: tuple[str, ...]
    key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def config(self) -> str:
        digest = hashlib.sha256(self.key.encode()).hexdigest()
        return json.dumps([{"principal": self.principal, "sha256": digest, "roles": self.roles}])

    @property
    def header(self) -> tuple[str, str]:
        return ("Authorization", f"Bearer {self.key}")
