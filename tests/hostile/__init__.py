"""Hostile targets and abusive checks: every bound asserted."""
