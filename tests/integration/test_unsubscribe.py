#!/usr/bin/python3
"""integration.unsubscribe: one Redis subscription per watched order per process.

PUBSUB NUMSUB trk:{ID} is 1 while 3 watchers watch the order (not 3), stays 1
while any remains (one leaves cleanly, one drops its TCP connection without a
close frame), and drops to 0 after the last one leaves.  Leaving and rejoining
at once (while the UNSUBSCRIBE is in flight) must end subscribed, with updates
flowing.
"""
import asyncio
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


WS = 'trackgate_connections{state="websocket"}'


async def numsub_becomes(env, channel, want, timeout=5.0):
    await h.async_wait_until(lambda: env.redis.numsub(channel) == want, timeout,
                             what=f"PUBSUB NUMSUB {channel} == {want}")


async def subscriber_settled(env, websockets, barrier):
    """Waits until the daemon counts `websockets` open websockets (it has handled the
    leaves: an UNSUBSCRIBE they cause is sent then), then joins and leaves the order
    `barrier`: its snapshot follows its SUBSCRIBE's ack on the same subscriber
    connection, so Redis has handled every command sent before it.  PUBSUB NUMSUB is
    then final: no fixed sleep decides that "nothing more will change"."""
    await env.wait_metric(WS, websockets)
    w = await env.watch(barrier)
    await w.close()


async def test(env):
    oid = f"unsub-{os.getpid()}"
    other = f"unsub-other-{os.getpid()}"
    ch, ch_other = f"trk:{{{oid}}}", f"trk:{{{other}}}"

    h.check_eq(env.redis.numsub(ch), 0, "subscribers before any watcher")
    ws = [await env.watch(oid) for _ in range(3)]
    o = await env.watch(other)
    # Each snapshot follows the SUBSCRIBE ack, so the count is final now.
    h.check_eq(env.redis.numsub(ch), 1, "subscribers of a channel with 3 watchers")
    h.check_eq(env.redis.numsub(ch_other), 1, "subscribers of the other order's channel")

    barrier = f"unsub-barrier-{os.getpid()}"
    await ws[0].close()
    await subscriber_settled(env, 3, barrier)
    h.check_eq(env.redis.numsub(ch), 1, "subscribers after 1 of 3 watchers left")

    ws[1].ws.transport.abort()  # gone without a close frame
    await ws[1].wait_closed()
    await subscriber_settled(env, 2, barrier)
    h.check_eq(env.redis.numsub(ch), 1, "subscribers after 2 of 3 watchers left")

    # The remaining watcher still gets updates.
    u = h.update(oid, h.now_ms(), status="picked_up")
    c = await env.aapply(u)
    f = await ws[2].update()
    h.check_eq(f.get("cursor"), c, "update to the last watcher")

    await ws[2].close()
    await numsub_becomes(env, ch, 0)
    h.check_eq(env.redis.numsub(ch_other), 1, "the other order keeps its subscription")
    env.assert_alive()

    # Rejoin after the unsubscribe: subscribed again, snapshot has the state.
    again = await env.watch(oid)
    h.check_eq(again.frames[0]["cursor"], c, "snapshot cursor after rejoining")
    h.check_eq(env.redis.numsub(ch), 1, "subscribers after rejoining")

    # Leave and rejoin immediately, several times: the UNSUBSCRIBE may be in
    # flight when the new watcher joins; it must end up subscribed and live.
    for i in range(6):
        if i % 2:
            await again.close()
            again = await env.watch(oid)
        else:  # the new socket's upgrade races the old one's close
            closing = asyncio.ensure_future(again.close())
            again = await env.watch(oid)
            await closing
    # The last one joined after every other left (their closes were awaited): once the
    # daemon has handled those leaves, the order must be subscribed (the updates below
    # prove it is live).
    await subscriber_settled(env, 2, barrier)
    h.check_eq(env.redis.numsub(ch), 1, "subscribers after quick leave/rejoin cycles")
    u2 = h.update(oid, h.now_ms() + 1, status="en_route_to_dropoff")
    c2 = await env.aapply(u2)
    f = await again.update()
    h.check(f.get("cursor") == c2 and f.get("update") == u2,
            f"update after leave/rejoin cycles: {f!r}")

    await again.close()
    await o.close()
    await numsub_becomes(env, ch, 0)
    await numsub_becomes(env, ch_other, 0)
    await numsub_becomes(env, f"trk:{{{barrier}}}", 0)
    # Orders' channels only: the node's own heartbeat channel (trk:hb:{NODE}) stays.
    chans = env.redis.cli("PUBSUB", "CHANNELS", "trk:{*")
    h.check_eq(chans, "", "channels still subscribed after every watcher left")
    hb = env.redis.cli("PUBSUB", "CHANNELS", "trk:hb:*").split()
    h.check_eq(len(hb), 1, f"the heartbeat channel beside them: {hb!r}")


if __name__ == "__main__":
    h.main(test)
