"""The round loop of `synthetic serve`: rounds one after another, never overlapping.

The next round starts ``every_s`` after the previous one started, or at once
when that one took longer (an overrun: counted, shown on the page and in
``/metrics``). After each round: the board the web reads, the sparklines,
the history (handed to its writer), the incidents and silences of the alert
store, and one line of output. The first SIGINT or SIGTERM lets the round
under way finish and ends the loop; a second stops that round at once.
"""

from __future__ import annotations

import signal
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from synthetic.config import Config
from synthetic.history.writer import HistoryWriter
from synthetic.serve.incidents import read_alerts
from synthetic.serve.runner import RoundRunner
from synthetic.serve.series import Series
from synthetic.serve.view import Board
from synthetic.watch import summary

POLL_S = 0.1


class Stop:
    """Set by SIGINT or SIGTERM; a second one aborts the round under way."""

    def __init__(self, abort: Callable[[], None]) -> None:
        self.signum: int | None = None
        self.abort = abort

    def __call__(self, signum: int, frame: types.FrameType | None) -> None:
        if self.signum is not None:
            self.abort()
        self.signum = signum


@dataclass
class Loop:
    runner: RoundRunner
    board: Board
    series: Series
    writer: HistoryWriter | None
    config: Config
    alerts_mode: str
    results_dir: Path
    every_s: float
    say: Callable[[str], None]

    def run(self, rounds: int | None, stop: Stop) -> int:
        number = 0
        shown_warning: str | None = None
        while stop.signum is None and (rounds is None or number < rounds):
            number += 1
            started = time.monotonic()
            done = self.runner.round(number)
            snapshot = self.board.record(done, every_s=self.every_s)
            self.series.add_run(done.run)
            if self.writer is not None:
                self.writer.submit(done.run)
            incidents, silences, locations, alerts_warning = read_alerts(
                self.config, self.alerts_mode, self.results_dir
            )
            warning = self.writer.warning if self.writer is not None else None
            self.board.update(
                incidents=incidents,
                silences=silences,
                locations=locations,
                alerts_warning=alerts_warning,
                history_warning=warning,
            )
            line = summary(number, done.run.worst.nagios_code, done.duration_s, done.run.to_json())
            if snapshot.round_overran:
                line += f"; overran its {self.every_s:g}s period, the next starts at once"
            if done.killed:
                line += f"; its process was stopped: {done.killed}"
            elif not done.run.complete and done.run.errors:
                line += f"; {done.run.errors[0]}"
            self.say(self.config.masker.text(line))
            for note in (*done.notes, *((warning,) if warning != shown_warning else ())):
                if note:
                    self.say(self.config.masker.text(note))
            shown_warning = warning
            if rounds is not None and number >= rounds:
                break
            while stop.signum is None and time.monotonic() < started + self.every_s:
                time.sleep(min(POLL_S, max(0.0, started + self.every_s - time.monotonic())))
        if stop.signum is not None:
            self.say(f"stopped by {signal.Signals(stop.signum).name}")
        return 0
