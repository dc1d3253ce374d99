"""When schedule ticks fall: cron in a time zone (daylight saving included), intervals, jitter, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import durable_django as durable
from durable_django.core.cadence import Cadence, due, jitter_for

PARIS_0230 = Cadence.of(cron="30 2 * * *", timezone="Europe/Paris")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def ticks(cadence: Cadence, start: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        start = cadence.after(start)
        found.append(start)
    return found


BAD = {
    "six fields": ({"cron": "0 0 2 * * *"}, "has 6 fields; use 5 fields"),
    "minute out of range": ({"cron": "61 2 * * *"}, "is not a valid cron expression (Bad minute)"),
    "words": ({"cron": "every day"}, "has 2 fields"),
    "empty": ({"cron": " "}, "use 5 fields"),
    "never fires": ({"cron": "0 0 31 2 *"}, "'0 0 31 2 *'"),
    "unknown zone": ({"cron": "0 2 * * *", "timezone": "Europe/Pari"}, "did you mean 'Europe/Paris'?"),
    "zone not a str": ({"cron": "0 2 * * *", "timezone": 1}, "pass an IANA time zone name"),
    "neither": ({}, "it got neither. Pass exactly one"),
    "both": ({"cron": "0 2 * * *", "every": timedelta(hours=1)}, "it got both"),
    "interval with a zone": ({"every": timedelta(hours=1), "timezone": "Europe/Paris"}, "applies to cron schedules"),
    "sub-second interval": ({"every": timedelta(milliseconds=1500)}, "a whole number of seconds, at least 1"),
    "zero interval": ({"every": timedelta(0)}, "at least 1"),
    "interval in seconds": ({"every": 60}, "pass a timedelta"),
}


@pytest.mark.parametrize("given,message", BAD.values(), ids=BAD.keys())
def test_a_bad_cadence_is_refused_with_what_to_fix(given, message):
    with pytest.raises(durable.InvalidSchedule) as caught:
        Cadence.of(**given)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_cron_takes_ranges_steps_lists_names_and_nicknames():
    assert ticks(Cadence.of(cron="0 9-17/4 * * MON-FRI"), utc(2026, 3, 6, 12), 4) == [
        utc(2026, 3, 6, 13),
        utc(2026, 3, 6, 17),
        utc(2026, 3, 9, 9),
        utc(2026, 3, 9, 13),
    ]
    assert ticks(Cadence.of(cron="15,45 0 1 JAN,jul *"), utc(2026, 1, 1), 3) == [
        utc(2026, 1, 1, 0, 15),
        utc(2026, 1, 1, 0, 45),
        utc(2026, 7, 1, 0, 15),
    ]
    assert Cadence.of(cron="@daily").cron == "0 0 * * *"
    assert Cadence.of(cron="@hourly").after(utc(2026, 1, 1, 5, 0, 1)) == utc(2026, 1, 1, 6)


def test_the_next_tick_is_strictly_after_the_instant():
    daily = Cadence.of(cron="0 2 * * *")
    assert daily.after(utc(2026, 5, 1, 2)) == utc(2026, 5, 2, 2)
    assert daily.after(utc(2026, 5, 1, 1, 59, 59, 999999)) == utc(2026, 5, 1, 2)


def test_intervals_are_aligned_to_the_unix_epoch_in_utc():
    hourly = Cadence.of(every=timedelta(hours=1))
    assert hourly.after(utc(2026, 5, 1, 10, 20)) == utc(2026, 5, 1, 11)
    assert hourly.after(utc(2026, 5, 1, 11)) == utc(2026, 5, 1, 12)
    assert hourly.latest(utc(2026, 5, 1, 11), 3) == [utc(2026, 5, 1, 9), utc(2026, 5, 1, 10), utc(2026, 5, 1, 11)]


def test_a_cron_time_in_a_zone_is_that_wall_clock_time_summer_and_winter():
    assert PARIS_0230.after(utc(2026, 1, 10)) == utc(2026, 1, 10, 1, 30)  # CET, UTC+1
    assert PARIS_0230.after(utc(2026, 7, 10)) == utc(2026, 7, 10, 0, 30)  # CEST, UTC+2


def test_dst_spring_forward_a_0230_paris_tick_that_does_not_exist_fires_at_0300_once():
    # 29 March 2026: at 02:00 CET clocks jump to 03:00 CEST; 02:30 never happens.
    day_before, spring, day_after = ticks(PARIS_0230, utc(2026, 3, 28), 3)
    assert day_before == utc(2026, 3, 28, 1, 30)  # 02:30 CET
    assert spring == utc(2026, 3, 29, 1, 0)  # 03:00 CEST, right after the jump
    assert day_after == utc(2026, 3, 30, 0, 30)  # 02:30 CEST


def test_dst_fall_back_a_0230_paris_tick_that_happens_twice_fires_once_at_the_first():
    # 25 October 2026: at 03:00 CEST clocks go back to 02:00 CET; 02:30 happens twice.
    fall, day_after = ticks(PARIS_0230, utc(2026, 10, 24, 12), 2)
    assert fall == utc(2026, 10, 25, 0, 30)  # 02:30 CEST, the first 02:30
    assert day_after == utc(2026, 10, 26, 1, 30)  # 02:30 CET: the second 02:30 of the 25th is skipped
    # Asked from inside the repeated hour, the first 02:30 is past and the second is not a tick.
    assert PARIS_0230.after(utc(2026, 10, 25, 1, 0)) == utc(2026, 10, 26, 1, 30)


def test_dst_a_wildcard_hour_cron_ticks_by_elapsed_time_through_both_changes():
    half_hourly = Cadence.of(cron="*/30 * * * *", timezone="Europe/Paris")
    spring = ticks(half_hourly, utc(2026, 3, 29, 0, 0), 3)
    assert spring == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30)]
    fall = ticks(half_hourly, utc(2026, 10, 25, 0, 0), 4)  # 02:00 CEST on: through the repeated hour
    assert fall == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2)]


def test_latest_ticks_of_a_cron_come_oldest_first_and_include_the_instant():
    daily = Cadence.of(cron="0 2 * * *")
    assert daily.latest(utc(2026, 5, 3, 2), 2) == [utc(2026, 5, 2, 2), utc(2026, 5, 3, 2)]
    assert PARIS_0230.latest(utc(2026, 3, 30, 12), 3) == [
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 30, 0, 30),
    ]


def test_jitter_is_within_bounds_deterministic_and_differs_between_ticks():
    spread = timedelta(minutes=10)
    offsets = [jitter_for("nightly", utc(2026, 5, day, 2), spread) for day in range(1, 29)]
    assert all(timedelta(0) <= offset <= spread for offset in offsets)
    assert len(set(offsets)) > 20, "the jitter does not spread ticks"
    assert offsets == [jitter_for("nightly", utc(2026, 5, day, 2), spread) for day in range(1, 29)]
    assert jitter_for("nightly", utc(2026, 5, 1, 2), timedelta(0)) == timedelta(0)


HOURLY = Cadence.of(every=timedelta(hours=1))


def test_nothing_is_due_before_the_tick_and_it_is_due_at_the_tick():
    early = due(HOURLY, "h", utc(2026, 5, 1, 11), utc(2026, 5, 1, 10, 59, 59), catch_up=1, jitter=timedelta(0))
    assert early.fire == () and early.next_tick == utc(2026, 5, 1, 11)
    on_time = due(HOURLY, "h", utc(2026, 5, 1, 11), utc(2026, 5, 1, 11), catch_up=1, jitter=timedelta(0))
    assert on_time.fire == (utc(2026, 5, 1, 11),)
    assert (on_time.next_tick, on_time.next_fire_at) == (utc(2026, 5, 1, 12), utc(2026, 5, 1, 12))
    assert on_time.dropped_since is None


def test_after_a_downtime_only_the_latest_catch_up_ticks_fire_in_order():
    later = utc(2026, 5, 3, 11, 30)  # two days and a half hour after 11:00 on the 1st: 49 ticks due
    latest = due(HOURLY, "h", utc(2026, 5, 1, 11), later, catch_up=1, jitter=timedelta(0))
    assert latest.fire == (utc(2026, 5, 3, 11),)
    assert latest.dropped_since == utc(2026, 5, 1, 11)
    assert latest.next_tick == utc(2026, 5, 3, 12)
    three = due(HOURLY, "h", utc(2026, 5, 1, 11), later, catch_up=3, jitter=timedelta(0))
    assert three.fire == (utc(2026, 5, 3, 9), utc(2026, 5, 3, 10), utc(2026, 5, 3, 11))
    everything = due(HOURLY, "h", utc(2026, 5, 1, 11), later, catch_up=100, jitter=timedelta(0))
    assert len(everything.fire) == 49 and everything.dropped_since is None


def test_a_year_of_downtime_on_a_minutely_cron_is_answered_without_walking_every_tick():
    minutely = Cadence.of(cron="* * * * *")
    result = due(minutely, "m", utc(2025, 5, 1), utc(2026, 5, 1, 0, 0, 30), catch_up=2, jitter=timedelta(0))
    assert result.fire == (utc(2026, 4, 30, 23, 59), utc(2026, 5, 1))
    assert result.next_tick == utc(2026, 5, 1, 0, 1)


def test_a_jittered_tick_is_never_due_before_its_jitter_has_passed():
    spread = timedelta(minutes=20)
    tick = utc(2026, 5, 1, 11)
    offset = jitter_for("j", tick, spread)
    assert offset > timedelta(0), "pick another name: this one draws no jitter"
    before = due(HOURLY, "j", tick, tick + offset - timedelta(microseconds=1), catch_up=1, jitter=spread)
    assert before.fire == () and before.next_fire_at == tick + offset
    at = due(HOURLY, "j", tick, tick + offset, catch_up=1, jitter=spread)
    assert at.fire == (tick,)
    assert at.next_fire_at == utc(2026, 5, 1, 12) + jitter_for("j", utc(2026, 5, 1, 12), spread)


def test_describe_says_when_in_words():
    assert PARIS_0230.describe() == "At 02:30 every day (Europe/Paris)"
    assert HOURLY.describe() == "every 1:00:00"
