"""What the zygote knows of the round under way, and the round's result from it (pure).

The round's process streams events (`synthetic.serve.child`); `RoundWatch`
keeps them, says when the process must be killed (`overdue`), and makes the
round's `RunResult` (`assemble`): the verdict when the process gave one,
else what it had sent, every other check UNKNOWN with the reason, and the
round incomplete. A round cannot turn green by dying.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthetic import blame, rundir
from synthetic.deadline import GRACE_S, STARTUP_S
from synthetic.outcome import one_line
from synthetic.redact import Masker
from synthetic.results import CheckResult, RunResult
from synthetic.run_state import now_iso
from synthetic.rundir import Placeholder, Status
from synthetic.watchdog import FINISH_GRACE_S

# After a check's hard deadline (or the run's), the round's own guard abandons
# the run within FINISH_GRACE_S; this much later the zygote kills the process
# (a check in C that holds the interpreter never lets the guard run).
KILL_AFTER_S = GRACE_S + FINISH_GRACE_S + 1.0


@dataclass
class RoundWatch:
    environment: str
    target: str | None
    masker: Masker
    fallback: Mapping[str, Placeholder]  # the catalogue as the zygote collected it
    after_verdict_s: float  # for state, exporters and alerts once the verdict is in
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(default_factory=now_iso)
    run_id: str | None = None
    run_dir: Path | None = None
    deadline: float | None = None  # the run's, once the checks are known
    timeout_s: float | None = None
    results: dict[str, CheckResult] = field(default_factory=dict)
    verdict: dict[str, Any] | None = None
    verdict_at: float | None = None
    results_path: str | None = None
    notes: list[str] = field(default_factory=list)
    killed: str | None = None  # why the zygote killed the process
    problem: str | None = None  # what the process said before it ended without a verdict
    stopped: Status | None = None  # the check under way when it did
    past_deadline: bool = False

    def event(self, event: Mapping[str, Any]) -> None:
        if "result" in event:
            result = CheckResult.from_json(event["result"])
            self.results[result.id] = result
        elif "verdict" in event:
            self.verdict = dict(event["verdict"])
            self.verdict_at = time.monotonic()
            self.results_path = event.get("results_path")
        elif "run_dir" in event:
            self.run_id = event.get("run_id") or None
            self.run_dir = Path(event["run_dir"]) if event["run_dir"] else None
        elif "deadline" in event:
            self.deadline = float(event["deadline"])
            self.timeout_s = float(event["timeout_s"])
        elif "notes" in event:
            self.notes = [str(note) for note in event["notes"]]

    def overdue(self, now: float) -> str | None:
        """Why the round's process must be killed now; None while it may go on."""
        if self.verdict_at is not None:
            if now > self.verdict_at + self.after_verdict_s:
                return f"it was still finishing {self.after_verdict_s:g} s after its verdict"
            return None
        deadline = self.deadline if self.deadline is not None else self.started + STARTUP_S
        if now > deadline + KILL_AFTER_S:
            self.past_deadline = True
            self.stopped = self._running()
            return f"it ran past the round's deadline ({self._timeout_s():g} s)"
        running = self._running()
        hard = running.deadline if running is not None else None
        if running is not None and hard is not None and now > hard + KILL_AFTER_S - GRACE_S:
            self.stopped = running
            return f"{running.check} did not stop at its time limit ({running.limit_s:g} s)"
        return None

    def assemble(self, ended: str) -> RunResult:
        """The round's result: its verdict, or what it sent and why the rest is missing."""
        if self.verdict is not None:
            return RunResult.from_json(self.verdict)
        catalogue = dict(self.fallback)
        if self.run_dir is not None:
            catalogue.update(rundir.read_catalogue(self.run_dir))
        why = (
            self.killed or self.problem or f"the round's process ended ({ended}) before it decided"
        )
        results = dict(self.results)
        for node, placeholder in catalogue.items():
            if node in results:
                continue
            if self.stopped is not None and node == self.stopped.check:
                if self.past_deadline:
                    told = blame.run_deadline(self._timeout_s(), started=True)
                else:
                    told = blame.stopped(
                        self.stopped.limit_s, self.stopped.waiting, after="its round's process"
                    )
            elif self.past_deadline:
                told = blame.run_deadline(self._timeout_s(), started=False)
            else:
                told = blame.not_run(f"the round was stopped: {why}")
            results[node] = placeholder.outcome(told, self.masker)
        return RunResult(
            run_id=self.run_id or new_round_id(),
            environment=self.environment,
            target=self.target,
            started_at=self.started_at,
            finished_at=now_iso(),
            checks=tuple(results.values()),
            errors=(self.masker.text(one_line(f"the round was stopped: {why}")),),
        )

    def _running(self) -> Status | None:
        if self.run_dir is None:
            return None
        for status in rundir.statuses(self.run_dir):
            if status.check and status.check not in self.results:
                return status
        return None

    def _timeout_s(self) -> float:
        return self.timeout_s if self.timeout_s is not None else STARTUP_S


def new_round_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)
