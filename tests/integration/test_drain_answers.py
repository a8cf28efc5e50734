#!/usr/bin/python3
"""integration.drain_answers: a SIGTERM drain answers every request whose updates were stored.

Eight posters keep POSTing batches of 5 updates (each with its own event_id)
over keep-alive connections; once 150 requests have been answered,
trackgated gets SIGTERM, and the posters go on until the server is gone.
Five rounds, each with a fresh trackgated on the same Redis.  Afterwards,
from Redis's seen sets:

- every update Redis stored belongs to a request answered 202 on the wire
  (before the fix, requests whose updates were stored could get no answer:
  the drain counted a request done when Redis answered, not when the answer
  was written, and closed the connection in between);
- no request answered 503 stored anything;
- every 503 "shutting_down" says Connection: close;
- trackgated exits 0 within drain-timeout (the harness's terminate).
"""
import http.client
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

POSTERS = 8
BATCH = 5


def poster(port, oid, stop, log, counter, lock):
    """POSTs until the server is gone; log gets (event_ids, status, connection header)."""
    n = 0
    conn = None
    while not stop.is_set():
        eids = [f"{oid}-{n}-{k}" for k in range(BATCH)]
        body = json.dumps([h.update(oid, h.now_ms(), lat=52.5, lng=13.4, event_id=e)
                           for e in eids])
        n += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/v1/updates", body=body,
                         headers={"Content-Type": "application/json",
                                  "Authorization": f"Bearer {h.INGEST_KEY}"})
            r = conn.getresponse()
            r.read()
            log.append((eids, r.status, (r.getheader("connection") or "").lower()))
            with lock:
                counter[0] += 1
            if r.status != 202 or r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            log.append((eids, None, ""))
            if conn is not None:
                conn.close()
                conn = None
            if stop.is_set():
                break
            time.sleep(0.005)  # the listener is closed: do not hammer the port while it exits


def stored(env, oid):
    out = env.redis.cli("SMEMBERS", f"trk:{{{oid}}}:seen")
    return set(out.split()) if out else set()


def test(env):
    pid = os.getpid()
    for rnd in range(5):
        if rnd:
            env.daemon.start()
        port = env.port
        logs = [[] for _ in range(POSTERS)]
        counter, lock, stop = [0], threading.Lock(), threading.Event()
        oids = [f"dr{rnd}-{i}-{pid}" for i in range(POSTERS)]
        threads = [threading.Thread(target=poster, args=(port, oids[i], stop, logs[i], counter, lock))
                   for i in range(POSTERS)]
        for t in threads:
            t.start()
        try:
            h.wait_until(lambda: counter[0] >= 150, 30, what="150 answered requests")
            took = env.daemon.terminate()
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        answered_ok, refused = set(), set()
        statuses = {}
        for log in logs:
            for eids, status, connection in log:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    answered_ok.update(eids)
                elif status is not None:
                    refused.update(eids)
                    h.check(status == 503, f"round {rnd}: a POST answered {status}")
                    h.check(connection == "close", f"round {rnd}: a 503 without Connection: close")
        in_redis = set()
        for oid in oids:
            in_redis |= stored(env, oid)
        lost = in_redis - answered_ok
        print(f"round {rnd}: drained in {took:.2f} s; answers {statuses}; {len(in_redis)} updates "
              f"stored, {len(lost)} of them unanswered")
        h.check(not lost, f"round {rnd}: {len(lost)} stored updates were never answered, e.g. "
                f"{sorted(lost)[:5]}")
        h.check(not (in_redis & refused), f"round {rnd}: updates answered 503 were stored")
        h.check(answered_ok <= in_redis, f"round {rnd}: answered 202 but not stored")
    print("PASS checks")


if __name__ == "__main__":
    h.main(test)
