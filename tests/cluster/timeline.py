"""What the API pods, their Services' endpoints and kube-proxy went through while a load ran:
when a request fails, the test says what each was doing at that moment."""

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
    """`kubectl get --watch` of the API pods and of the namespace's EndpointSlices, and what
    kube-proxy logs as it syncs its rules, every line stamped with the monotonic clock when it
    arrived (a watch costs next to nothing, where polling would take CPU from the system
    under test)."""

    def __init__(self, node: KubeNode, namespace: str, pod_selector: str) -> None:
        watches = [
            ("get", "pods", "-l", pod_selector, "--watch", "-o", PODS),
            ("get", "endpointslices", "--watch", "-o", SLICES),
        ]
        self.headers: list[str] = []
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self._procs = [
            self._start(node.kubectl_command("-n", namespace, *args), header=True)
            for args in watches
        ]
        # kube-proxy's syncs, begun and done (the node runs it at verbosity 2).
        self._procs.append(
            self._start(["tail", "-n", "0", "-F", str(node.kube_proxy_log)], header=False)
        )

    def _start(self, argv: list[str], *, header: bool) -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        reader = threading.Thread(target=self._read, args=(proc, header), daemon=True)
        reader.start()
        self._readers.append(reader)
        return proc

    def _read(self, proc: subprocess.Popen[str], header: bool) -> None:
        assert proc.stdout is not None
        if header:
            first = proc.stdout.readline().rstrip()
            with self._lock:
                self.headers.append(first)
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
