"""Pacing to Visma's rate limit: spread the last calls of a window, wait out an empty budget."""

from __future__ import annotations

import threading

import httpx

from visma_tableau_pipeline.visma.catalogue import entity
from visma_tableau_pipeline.visma.client import VismaClient
from visma_tableau_pipeline.visma.pacing import Pacer

from .fake_visma import FakeClock, FakeVisma, company, suppliers


def budget(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}


def test_requests_go_at_once_while_plenty_of_budget_remains():
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.observe(budget(1000, 900, 3000))
    assert [pacer.acquire() for _ in range(50)] == [0.0] * 50


def test_a_low_remainder_is_spread_over_the_rest_of_the_window():
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.observe(budget(1000, 4, 60))
    for _ in range(4):
        pacer.acquire()
    # 4 calls left in 60 s: one now, then one every 15 s, never past the window's end.
    assert clock.sleeps == [15.0, 15.0, 15.0]
    assert clock.now - 1000.0 <= 60


def test_an_empty_budget_waits_for_the_window_to_end():
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.observe(budget(100, 0, 42))
    assert pacer.acquire() == 42.0
    assert pacer.acquire() == 0.0  # a new window


def test_out_of_order_answers_do_not_raise_the_remainder():
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.observe(budget(100, 1, 30))
    pacer.observe(budget(100, 50, 30))  # a slower, older answer of the same window
    assert pacer.acquire() == 0.0
    assert pacer.acquire() == 30.0


def test_requests_sent_before_the_first_answer_of_a_window_are_taken_off_its_budget():
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    assert [pacer.acquire() for _ in range(4)] == [0.0] * 4  # nothing known: all go at once
    # The first answer says 3 remain, but Visma may have counted the other 3 requests after it.
    pacer.observe(budget(100, 3, 60))
    assert pacer.acquire() == 60.0


def test_retry_after_holds_every_thread():
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.hold(20)
    threads = [threading.Thread(target=pacer.acquire) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.sleeps[0] == 20.0 and len(clock.sleeps) >= 1


def test_the_client_slows_down_when_visma_says_the_budget_is_low():
    clock = FakeClock()
    fake = FakeVisma(lists={"/v1/supplier": suppliers(10)}, max_page_size=2, rate_limit=100, rate_reset=100, clock=clock)
    fake.rate_remaining = 6  # the next answers say 5, 4, 3, 2, 1 calls remain
    client = VismaClient(
        company(), transport=httpx.MockTransport(fake.handle),
        pacer=Pacer(clock=clock, sleep=clock.sleep), clock=clock, sleep=clock.sleep, max_concurrency=1,
    )
    with client:
        records = [r for batch in client.read_entity(entity("suppliers")) for r in batch]
        throttled = client.stats.throttled_seconds
    assert len(records) == 10
    # 5 pages on a budget of 5 calls left in 100 s: spread evenly over the window.
    # Page 1 teaches the budget; pages 3 to 5 are spaced by the 20 s each call's share is worth.
    assert clock.sleeps == [20.0, 20.0, 20.0] and throttled == 60.0
