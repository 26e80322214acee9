"""A cloud link on loopback: a TCP proxy that adds a one-way delay (half the round-trip
time, each direction) and a bandwidth cap (a token bucket per direction, shared by every
connection), so the engine meets the latency and bandwidth of a WAN link to the cloud.

    proxy = LinkProxy(("127.0.0.1", 8333), rtt_ms=40, mbps=400).start()
    ... point the client at proxy.endpoint ...
    proxy.stop(); proxy.passed   # bytes carried in each direction

Order on the wire, as on a real link: a chunk is serialised at the link's rate (the
bucket), then travels for rtt/2 before the far side sees it. Reading pauses while the
bucket is empty, so TCP's flow control reaches the sender as on a full link.
"""

import asyncio
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

CHUNK = 64 * 1024


class TokenBucket:
    """`rate` bytes per second, at most `burst` bytes at once."""

    def __init__(self, rate, burst=CHUNK):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def delay_for(self, size, now):
        """Take `size` bytes; the seconds to wait before they have passed."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= size
        return max(0.0, -self.tokens / self.rate)


class LinkProxy:
    def __init__(self, target, rtt_ms, mbps, host="127.0.0.1"):
        self.target, self.host = target, host
        self.one_way = rtt_ms / 2000
        rate = mbps * 1e6 / 8
        self.buckets = {"up": TokenBucket(rate), "down": TokenBucket(rate)}
        self.passed = {"up": 0, "down": 0}
        self.port = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="linkproxy", daemon=True)

    @property
    def link_mb_s(self):
        return self.buckets["up"].rate / 1e6

    @property
    def endpoint(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the link proxy did not start")
        return self

    def stop(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._connection, self.host, 0)
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        self.loop.close()

    async def _shutdown(self):
        self.loop.set_exception_handler(lambda loop, context: None)
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, server_writer, "up"),
            self._pipe(server_reader, client_writer, "down"),
            return_exceptions=True,
        )

    async def _pipe(self, reader, writer, direction):
        """Serialise at the bucket's rate, then deliver each chunk rtt/2 later, in order."""
        in_flight = asyncio.Queue()
        deliver = asyncio.ensure_future(self._deliver(in_flight, writer))
        bucket = self.buckets[direction]
        try:
            while chunk := await reader.read(CHUNK):
                wait = bucket.delay_for(len(chunk), time.monotonic())
                if wait:
                    await asyncio.sleep(wait)
                self.passed[direction] += len(chunk)
                in_flight.put_nowait((time.monotonic() + self.one_way, chunk))
        except OSError:
            pass
        in_flight.put_nowait((time.monotonic() + self.one_way, b""))
        await deliver

    async def _deliver(self, in_flight, writer):
        try:
            while True:
                due, chunk = await in_flight.get()
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


class LinkedS3:
    """An S3 server seen through the link: its credentials, the proxy's endpoint."""

    def __init__(self, s3, proxy):
        self.s3, self.proxy = s3, proxy

    def __getattr__(self, name):
        return getattr(self.s3, name)

    @property
    def endpoint_url(self):
        return self.proxy.endpoint

    def client(self, **config):
        return type(self.s3).client(self, **config)


class LinkProcess:
    """The proxy in a process of its own (`python bench/linkproxy.py`), so that no client
    shares its interpreter: the link's CPU is not taken from whoever measures through it."""

    def __init__(self, target, rtt_ms, mbps):
        self.link_mb_s = mbps / 8
        command = [sys.executable, __file__, f"{target[0]}:{target[1]}", str(rtt_ms), str(mbps)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.endpoint = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def start_link(s3, rtt_ms, mbps):
    """(the proxy's process, the S3 server as seen through it)."""
    target = urlparse(s3.endpoint_url)
    proxy = LinkProcess((target.hostname, target.port), rtt_ms, mbps)
    return proxy, LinkedS3(s3, proxy)


def ceiling(linked, bucket, size, count=400, threads=32):
    """MB/s of `count` PUTs of `size` bytes, `threads` at once, through the link: what the
    link and the store behind it can carry on this machine now (the engine's fair top)."""
    from concurrent.futures import ThreadPoolExecutor

    client = linked.client(max_pool_connections=threads)
    body = bytes(size)

    def put(n):
        client.put_object(Bucket=bucket, Key=f"link-ceiling/{n}", Body=body)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, range(count)))
    return count * size / (time.perf_counter() - started) / 1e6


def main():
    """`linkproxy.py HOST:PORT RTT_MS MBPS`: print the port, serve until SIGTERM."""
    host, port = sys.argv[1].rsplit(":", 1)
    proxy = LinkProxy((host, int(port)), float(sys.argv[2]), float(sys.argv[3])).start()
    print(proxy.port, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    proxy.stop()


if __name__ == "__main__":
    main()
