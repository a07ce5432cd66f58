"""The longest wait between two firings of a CronJob schedule (pure: no I/O, no clock).

The base's "no push for two schedules" alert needs the schedule as seconds; the generated
schedules and any `--schedule` a user gives repeat every week at most, so the firings of one
week (at most 7 x 24 x 60 minutes) give the longest gap exactly, wrap-around included. A line
with a day of month or a month other than `*` repeats more slowly than a week and is refused
with one line: the alert would not know when to fire.
"""

from __future__ import annotations

WEEK_MINUTES = 7 * 24 * 60
#: (name, lowest, highest) of the five fields; day of week 7 is Sunday again (as cron reads it).
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


class CronError(ValueError):
    """A schedule this module cannot read; the message says which field and why."""


def _item(text: str, name: str, low: int, high: int) -> range:
    """One comma-separated item: `*`, `N`, `A-B`, each optionally `/STEP`."""
    base, _, step_text = text.partition("/")
    if step_text and (not step_text.isdigit() or int(step_text) == 0):
        raise CronError(f"{name}: step {step_text!r} is not a positive number")
    step = int(step_text or 1)
    if base == "*":
        first, last = low, high
    else:
        a, dash, b = base.partition("-")
        if not a.isdigit() or (dash and not b.isdigit()):
            raise CronError(f"{name}: {text!r} is not *, a number or a range of numbers")
        first = int(a)
        last = int(b) if dash else (high if step_text else first)
        if not low <= first <= last <= high:
            raise CronError(f"{name}: {text!r} is outside {low}-{high}")
    return range(first, last + 1, step)


def _values(text: str, name: str, low: int, high: int) -> set[int]:
    return {v for item in text.split(",") for v in _item(item, name, low, high)}


def firings(schedule: str) -> list[int]:
    """The minutes of one week (0 = Sunday 00:00 UTC) at which `schedule` fires, sorted."""
    fields = schedule.split()
    if len(fields) != 5:
        raise CronError(f"{schedule!r}: expected 5 fields (minute hour day-of-month month day-of-week)")
    minute, hour, _, _, dow = (_values(f, *spec) for f, spec in zip(fields, FIELDS, strict=True))
    if fields[2] != "*" or fields[3] != "*":
        raise CronError(f"{schedule!r}: day of month and month must be * (a schedule that repeats every week)")
    days = {d % 7 for d in dow}
    return sorted(d * 1440 + h * 60 + m for d in days for h in hour for m in minute)


def period_seconds(schedule: str) -> int:
    """The longest time between two firings of `schedule`, in seconds (a week at most)."""
    times = firings(schedule)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)] + [times[0] + WEEK_MINUTES - times[-1]]
    return max(gaps) * 60
