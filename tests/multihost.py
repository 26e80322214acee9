"""Several worker hosts on one machine: the harness the multi-host test
(tests/migration/test_multihost.py) and bench/scale_out.py share.

Each "host" is a network namespace created here (as root), joined to a bridge in the
machine's namespace by a veth pair, with its own address in a private /24 used nowhere
else (10.213.X.0/24; the bridge holds .1, host i holds .(10+i)), its own host name (a UTS
namespace), its own Celery worker and its own Storage SCP (`manage.py storescp`, AE
CCHOST<i>, listening on the host's address). Inside a namespace there is no default
route: a host reaches the bridge's subnet and nothing else, so no other address can be
contacted from it. The hosts share what listens on the bridge's address in the machine's
namespace: the S3 store (SeaweedFS, bound to that address alone), the PACS (Orthanc 1.10
listens on every interface and answers only its registered modalities) and two relays
run by this process for the services that listen on loopback only, the PostgreSQL
database and Redis (the broker, the engine's slots, the channel layer).

Losing a host (`Cluster.lose`) deletes its link, so its address is gone, and SIGKILLs
every process in its namespace: its peers hear nothing more, as when a machine dies.
Everything is removed when the cluster closes, on failure too; namespaces and links left
by a run that was itself killed are removed by the next one.
"""

import asyncio
import contextlib
import ipaddress
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from devstack.services.seaweedfs import SeaweedS3
from tests.fixtures_processes import CeleryWorker, StorageScp, database_url

PREFIX = "ccmh"
SUBNETS = "10.213"
SCP_PORT = 11112  # the same port on every host: each host has its own address
STALE = re.compile(rf"^{PREFIX}(\d+)")


class MultihostError(RuntimeError):
    """An `ip` command failed (the message has its stderr)."""


def ip(*args, check=True):
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode:
        raise MultihostError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_namespace(namespace):
    """SIGKILL every process in a namespace until none is left; the pids killed."""
    killed = set()
    for _round in range(50):
        pids = [int(p) for p in ip("netns", "pids", namespace, check=False).split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.1)
    return killed


def sweep_stale():
    """Remove the namespaces and links of earlier runs whose process is gone."""
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        found = STALE.match(name)
        if found and not _alive(int(found.group(1))):
            kill_namespace(name)
            ip("netns", "del", name, check=False)
    for line in ip("-o", "link", "show", check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        found = STALE.match(name)
        if found and not _alive(int(found.group(1))):
            ip("link", "del", name, check=False)


def free_subnet(start):
    """A 10.213.X.0/24 that no address or route of the machine touches."""
    taken = [
        ipaddress.ip_network(word, strict=False)
        for word in ip("-4", "-o", "addr", "show").split() + ip("-4", "route", "show").split()
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+(/\d+)?", word)
    ]
    for step in range(250):
        subnet = ipaddress.ip_network(f"{SUBNETS}.{(start + step) % 250 + 1}.0/24")
        if not any(subnet.overlaps(other) for other in taken if other.prefixlen > 0):
            return subnet
    raise MultihostError(f"no free /24 in {SUBNETS}.0.0/16")


class Network:
    """The bridge and one namespace per host (see the module docstring)."""

    def __init__(self, hosts):
        self.tag = f"{PREFIX}{os.getpid()}"
        self.hosts = hosts
        self.subnet = free_subnet(os.getpid())
        self.gateway = str(self.subnet.network_address + 1)
        self.bridge = self.tag
        self.lost = set()

    def namespace(self, index):
        return f"{self.tag}-{index}"

    def address(self, index):
        return str(self.subnet.network_address + 10 + index)

    def link(self, index):
        return f"{self.tag}v{index}"

    def create(self):
        sweep_stale()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for index in range(1, self.hosts + 1):
            namespace, link = self.namespace(index), self.link(index)
            ip("netns", "add", namespace)
            ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            ip("link", "set", link, "master", self.bridge, "up")
            ip("-n", namespace, "addr", "add", f"{self.address(index)}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
            ip("-n", namespace, "link", "set", "lo", "up")
        return self

    def routes(self, index):
        """The routing table inside a host's namespace (its own /24 only)."""
        return ip("-n", self.namespace(index), "-4", "route", "show").strip()

    def wrap(self, index, hostname):
        """The command prefix that runs a program on host `index` as `hostname`."""
        script = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.namespace(index), "unshare", "--uts",
                "sh", "-c", script, hostname]  # fmt: skip

    def lose(self, index):
        """The host dies: its link (and address) gone, then every process in it SIGKILLed.
        In this order, as when a machine dies, its peers hear nothing: killed first, its
        kernel would close their connections to the PACS and the relays."""
        ip("link", "del", self.link(index))
        self.lost.add(index)
        return kill_namespace(self.namespace(index))

    def destroy(self):
        for index in range(1, self.hosts + 1):
            kill_namespace(self.namespace(index))
            ip("netns", "del", self.namespace(index), check=False)
            ip("link", "del", self.link(index), check=False)
        ip("link", "del", self.bridge, check=False)

    def leftovers(self):
        """Namespaces and links of this network still present (empty once destroyed)."""
        names = ip("netns", "list", check=False) + ip("-o", "link", "show", check=False)
        return sorted(set(re.findall(rf"\b{self.tag}[-v]?\d*\b", names)))


class Relay:
    """A TCP relay in this process, from (host, a free port) to `target`: how the hosts
    reach the services that listen on loopback only. A connection whose host died is
    noticed within seconds and closed on both sides (a dead worker's open transaction is
    then rolled back, as a server's own keepalive would do): by keepalive when idle, and
    by TCP_USER_TIMEOUT when the service's last reply is still unacknowledged (keepalive
    is silent then, and retransmission alone would hold it for 15 minutes)."""

    KEEPALIVE = {"TCP_KEEPIDLE": 3, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 3, "TCP_USER_TIMEOUT": 6000}

    def __init__(self, host, target):
        self.host, self.target = host, target
        self.port = None
        self.server = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="relay")
        self.writers = set()

    def start(self):
        self.thread.start()
        serving = asyncio.start_server(self._client, self.host, 0)
        self.server = asyncio.run_coroutine_threadsafe(serving, self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader, writer):
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in self.KEEPALIVE.items():
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.writers.difference_update((writer, up_writer))

    @staticmethod
    async def _pipe(reader, writer):
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    def stop(self):
        async def close():
            self.server.close()
            for writer in list(self.writers):
                writer.close()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def relayed_url(url, host, port):
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{auth + '@' if auth else ''}{host}:{port}"))


class WorkerHost:
    """One host's processes: its Storage SCP and its Celery worker."""

    def __init__(self, cluster, index):
        self.cluster, self.index = cluster, index
        self.hostname = f"cchost{index}"
        self.aet = f"CCHOST{index}"
        self.address = cluster.network.address(index)
        self.folder = Path(cluster.workdir) / self.hostname
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket = Path(f"/tmp/{cluster.network.tag}-{index}.sock")
        self.worker = self.scp = None

    def env(self):
        return {
            **self.cluster.env,
            "MIGRATION_STORAGE_SCP_AET": self.aet,
            "MIGRATION_STORAGE_SCP_BIND": self.address,
            "MIGRATION_STORAGE_SCP_PORT": str(SCP_PORT),
            "MIGRATION_STORAGE_SCP_SOCKET": str(self.socket),
            "MIGRATION_STORAGE_SCP_ASIDE": str(self.folder / "aside"),
        }

    def start(self, queue, concurrency):
        wrap = self.cluster.network.wrap(self.index, self.hostname)
        self.scp = StorageScp(self.folder / "storescp.log", env=self.env(), wrap=wrap).start()
        self.worker = CeleryWorker(
            f"mh{self.index}-{os.getpid()}@{self.hostname}", self.folder / "worker.log",
            env=self.env(), args=["-Q", queue, "--concurrency", str(concurrency)], wrap=wrap,
        ).start()  # fmt: skip
        return self

    def stop(self):
        for process in (self.worker, self.scp):
            if process is not None:
                process.stop()
        self.socket.unlink(missing_ok=True)  # a killed Storage SCP leaves it


class Cluster:
    """The network, the relays, the S3 store on the bridge's address and the hosts.

    `env`: environment every host's processes get (engine settings, S3 credentials);
    DATABASE_URL, REDIS_URL and EGRESS_ALLOW are set here to what the hosts reach.
    Use as a context manager: everything is removed on exit.
    """

    def __init__(self, hosts, workdir, env, redis_url, s3_volume_mb=64):
        self.network = Network(hosts)
        self.workdir = Path(workdir)
        self.base_env = dict(env)
        self.redis_url = redis_url
        self.s3_volume_mb = s3_volume_mb
        self.relays, self.hosts, self.s3 = [], {}, None
        self.env = {}

    @property
    def gateway(self):
        return self.network.gateway

    def __enter__(self):
        try:
            self.network.create()
            self.s3 = SeaweedS3(
                workdir=self.workdir / "s3", host=self.gateway,
                volume_size_limit_mb=self.s3_volume_mb,
            ).start()  # fmt: skip
            self.env = {**self.base_env, **self._relayed(), "EGRESS_ALLOW": self.egress_allow()}
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def egress_allow(self):
        return f"127.0.0.0/8,::1,localhost,{self.network.subnet}"

    def _relayed(self):
        """DATABASE_URL and REDIS_URL as the hosts reach them (SQLite is a shared file)."""
        urls = {"REDIS_URL": self.redis_url, "DATABASE_URL": database_url()}
        out = {}
        for name, url in urls.items():
            parts = urlsplit(url)
            if not parts.hostname:
                out[name] = url
                continue
            relay = Relay(self.gateway, (parts.hostname, parts.port)).start()
            self.relays.append(relay)
            out[name] = relayed_url(url, self.gateway, relay.port)
        return out

    def start(self, queue, hosts=None, concurrency=2):
        """Start the hosts (all, or the indexes given) one after the other."""
        for index in hosts or range(1, self.network.hosts + 1):
            self.hosts[index] = WorkerHost(self, index).start(queue, concurrency)
        return list(self.hosts.values())

    def register(self, orthanc):
        """Every host's Storage SCP as a modality of the PACS (AE → address, port)."""
        for index in range(1, self.network.hosts + 1):
            orthanc.add_modality(f"CCHOST{index}", self.network.address(index), SCP_PORT)

    def lose(self, index):
        """Host `index` dies (see Network.lose); returns the pids killed."""
        return self.network.lose(index)

    def stop_hosts(self):
        for host in self.hosts.values():
            host.stop()  # a lost host's processes are gone already: only its socket left
        self.hosts.clear()

    def close(self):
        with contextlib.suppress(Exception):
            self.stop_hosts()
        self.network.destroy()
        if self.s3 is not None:
            self.s3.stop()
        for relay in self.relays:
            relay.stop()


def established(port):
    """Peer addresses of the established TCP connections to local `port` in the
    machine's namespace, from /proc/net/tcp: a quick look at one server's (the PACS's)
    associations, milliseconds where PacsAssociations takes a tenth of a second."""
    peers = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == "01" and int(local.split(":")[1], 16) == port:
            raw = bytes.fromhex(remote.split(":")[0])[::-1]
            peers.append(socket.inet_ntoa(raw))
    return peers


class PacsAssociations(threading.Thread):
    """Samples, at the PACS process, its associations: established TCP connections on
    its DICOM port (ours to it) plus those it opened to a Storage SCP (its C-STOREs
    back); `stores` keeps the second kind alone (C-MOVEs delivering at once); `studies`
    the studies in flight (the engine's association slots held for the source, two per
    C-MOVE study); `peers`
    the addresses at the other end of them (which hosts held associations at once), at
    `times` (time.monotonic())."""

    def __init__(self, pid, dicom_port, scp_port, source_id):
        from migration import throttle

        super().__init__(daemon=True)
        self.pacs = psutil.Process(pid)
        self.ports = (dicom_port, scp_port)
        self.slots = throttle.Slots(source_id)
        self.samples, self.stores, self.studies, self.peers, self.times = [], [], [], [], []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            inbound, outbound = [], []
            for c in self.pacs.net_connections(kind="tcp"):
                if c.status != psutil.CONN_ESTABLISHED:
                    continue
                if c.laddr and c.laddr.port == self.ports[0]:
                    inbound.append(c.raddr.ip)
                if c.raddr and c.raddr.port == self.ports[1]:
                    outbound.append(c.raddr.ip)
            self.samples.append(len(inbound) + len(outbound))
            self.stores.append(len(outbound))
            self.peers.append(frozenset(inbound + outbound))
            self.studies.append(self.slots.in_use() // 2)
            self.times.append(time.monotonic())
            time.sleep(0.001)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join()

    def watched(self):
        """Did the sampler see the PACS idle first, then holding associations? Then it ran
        before the work began and while it went on. (How many samples fit in a wave
        depends on the machine's load, not on the engine.)"""
        return bool(self.samples) and self.samples[0] == 0 and max(self.samples) > 0

    def last_seen(self, address):
        """When the PACS last held an association with `address` (None: never)."""
        held = [at for at, peers in zip(self.times, self.peers, strict=True) if address in peers]
        return held[-1] if held else None
