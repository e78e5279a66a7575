"""The hostile suite: a loopback server answering every kind of bad response, and
the monitor's bounds (time, memory, what it follows, what it prints) against it."""
