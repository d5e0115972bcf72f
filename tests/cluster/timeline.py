"""What the API pods and their Services' endpoints went through while a load ran: when a
request fails, the test says what the pods and endpoints were doing at that moment."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterable

from claimflow_devstack.kube_node import KubeNode

PODS = (
    "custom-columns=POD:.metadata.name,IP:.status.podIP,"
    'READY:.status.conditions[?(@.type=="Ready")].status,'
    "RESTARTS:.status.containerStatuses[0].restartCount,DELETING:.metadata.deletionTimestamp"
)
SLICES = (
    "custom-columns=SLICE:.metadata.name,ADDRESS:.endpoints[*].addresses[0],"
    "READY:.endpoints[*].conditions.ready,SERVING:.endpoints[*].conditions.serving,"
    "TERMINATING:.endpoints[*].conditions.terminating"
)


class Timeline:
    """`kubectl get --watch` of the API pods and of the namespace's EndpointSlices, every line
    stamped with the monotonic clock when it arrived (a watch costs next to nothing, where
    polling would take CPU from the system under test)."""

    def __init__(self, node: KubeNode, namespace: str, pod_selector: str) -> None:
        watches = {
            "pods": ("get", "pods", "-l", pod_selector, "--watch", "-o", PODS),
            "endpoints": ("get", "endpointslices", "--watch", "-o", SLICES),
        }
        self.headers: list[str] = []
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._procs = [
            subprocess.Popen(
                node.kubectl_command("-n", namespace, *args),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for args in watches.values()
        ]
        self._readers = [
            threading.Thread(target=self._read, args=(proc,), daemon=True) for proc in self._procs
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        header = proc.stdout.readline().rstrip()
        with self._lock:
            self.headers.append(header)
        for line in proc.stdout:
            with self._lock:
                self.lines.append((time.monotonic(), line.rstrip()))

    def __enter__(self) -> Timeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
            proc.wait(10)
        for reader in self._readers:
            reader.join(10)

    def around(self, moments: Iterable[float], window: float = 15.0) -> str:
        """The lines that arrived within `window` seconds of any of `moments` (monotonic),
        each with its offset from the first moment, and the moments themselves marked."""
        moments = sorted(moments)
        if not moments:
            return ""
        origin = moments[0]
        with self._lock:
            picked = [
                (at, line)
                for at, line in self.lines
                if any(abs(at - moment) <= window for moment in moments)
            ]
            headers = list(self.headers)
        picked += [(moment, "<-- a request failed") for moment in moments]
        stamped = [f"{at - origin:+8.2f}s {line}" for at, line in sorted(picked)]
        return "\n".join([*headers, *stamped])
