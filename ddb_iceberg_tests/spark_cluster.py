"""A real Spark standalone cluster on loopback, from pyspark's own jars: a master and workers in JVMs of their
own, whose executors (more JVMs, and the Python workers they fork) run the job's tasks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def busy_executor(driver: subprocess.Popen[str], driver_ui: int, timeout: float = 120) -> int | None:
    """The process id of an executor JVM that runs tasks of the application whose driver (its UI and REST API on
    port `driver_ui`) is `driver`, as soon as one does; None when none did while the driver ran (or in `timeout`
    seconds)."""
    api = f"http://127.0.0.1:{driver_ui}/api/v1/applications"
    deadline = time.monotonic() + timeout
    while driver.poll() is None and time.monotonic() < deadline:
        try:
            (application,) = _json(api)
            executors = _json(f"{api}/{application['id']}/executors")
        except OSError:  # the driver's UI is not up yet
            executors = []
        for executor in executors:
            if executor["id"] != "driver" and executor["activeTasks"] > 0:
                return _executor_pid(application["id"], executor["id"])
        time.sleep(0.1)
    return None


def _executor_pid(application: str, executor: str) -> int | None:
    wanted = (b"CoarseGrainedExecutorBackend", b"\0--executor-id\0%s\0" % executor.encode(), application.encode())
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if all(part in cmdline.read_bytes() for part in wanted):
                return int(cmdline.parent.name)
        except OSError:  # the process ended meanwhile
            continue
    return None


@dataclass
class StandaloneCluster:
    root: Path
    master_port: int = field(default_factory=free_port)
    master_ui: int = field(default_factory=free_port)
    worker_uis: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOG_DIR": str(self.root / "logs"),
        }

    def _spark_class(self, name: str, *args: str, log: str) -> None:
        with (self.root / log).open("wb") as output:
            self.processes.append(
                subprocess.Popen(
                    [str(SPARK_HOME / "bin" / "spark-class"), name, *args],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            )

    def start(self, workers: int = 2, cores: int = 1, memory: str = "1g") -> StandaloneCluster:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self._spark_class(
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(self.master_port), "--webui-port", str(self.master_ui)),
            log="master.log",
        )
        self._wait(lambda state: state.get("status") == "ALIVE", "the master to start")
        for index in range(workers):
            ui = free_port()
            self.worker_uis.append(ui)
            work_dir = self.root / f"worker-{index}"
            work_dir.mkdir()
            self._spark_class(
                "org.apache.spark.deploy.worker.Worker",
                *("--host", "127.0.0.1", "--cores", str(cores), "--memory", memory),
                *("--webui-port", str(ui), "--work-dir", str(work_dir), self.master_url),
                log=f"worker-{index}.log",
            )
        self._wait(
            lambda state: sum(w.get("state") == "ALIVE" for w in state.get("workers", [])) == workers,
            f"{workers} workers to register",
        )
        return self

    def master_state(self) -> Any:
        return _json(f"http://127.0.0.1:{self.master_ui}/json/")

    def _wait(self, ready: Any, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready(self.master_state()):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"timed out waiting for {what}; see {self.root / 'logs'}")

    def executors_by_worker(self) -> list[list[dict[str, Any]]]:
        """Each worker's executors, running and finished."""
        states = [_json(f"http://127.0.0.1:{ui}/json/") for ui in self.worker_uis]
        return [state.get("executors", []) + state.get("finishedexecutors", []) for state in states]

    def stop(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, 15)
            except ProcessLookupError:
                continue
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
