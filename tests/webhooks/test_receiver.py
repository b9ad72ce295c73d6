"""The test receiver's own checks can fail (else the cluster tests would prove nothing)."""

import threading

import requests

from tests.webhooks.receiver import ConcurrencyTracker


def test_concurrency_tracker_sees_two_sends_of_one_message_at_once(receiver):
    tracker = ConcurrencyTracker(hold=0.3)
    receiver.responder = tracker

    def send(msg_id):
        requests.post(receiver.url, data=b"{}", headers={"webhook-id": msg_id}, timeout=5)

    threads = [threading.Thread(target=send, args=(m,)) for m in ("msg_a", "msg_a", "msg_b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tracker.overlaps == ["msg_a"]
    send("msg_a")  # one after the other is not an overlap
    assert tracker.overlaps == ["msg_a"]
