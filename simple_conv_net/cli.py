"""Argument types shared by the command-line tools, so each rule is written once."""

import argparse


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (batch sizes, epochs, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
