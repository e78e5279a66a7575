"""Hostile targets and abusive checks: a loopback server answering every kind of bad
response, abusive checks and receivers, and every bound (time, memory, what is
followed, what is printed) asserted against them."""
