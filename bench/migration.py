"""Benchmark: the migration engine against the raw C-GET ceiling and a naive peer.

    .venv/bin/python bench/migration.py [--studies 20] [--instances 50] [--size 512]
                                        [--associations 2] [--threads 8] [--fresh]
    .venv/bin/python bench/migration.py --big-study-mb 1024   # memory with one big study
    .venv/bin/python bench/migration.py --s3-rtt-ms 40 --s3-mbps 400  # a WAN link to S3

Seeds an Orthanc with STUDIES studies of INSTANCES 16-bit CT images of SIZE×SIZE pixels
(512 KB each at 512), then measures in one run:
  (a) the ceiling: pynetdicom C-GET of every study into memory, with the same number of
      associations as the engine (pynetdicom's AE with TCP_NODELAY), before and after
      the engine, the better run counting; also pynetdicom as it comes and, for
      comparison only, the engine's own C-GET into memory;
  (b) the naive peer: dcmtk's `getscu` and pynetdicom's `getscu` app to disk (the faster
      one counts), then boto3 uploads one by one to SeaweedFS;
  (c) the engine end to end: a wave started here, run by a real Celery worker, retrieving
      by C-GET and storing in SeaweedFS, every study verified; the bench then checks the
      stored objects against the manifests itself.
Prints instances/s and MB/s of each, the ratios c/a and c/b, the worker's peak RSS, and
one JSON line last. The seeded Orthanc is kept in /tmp/bench-migration-orthanc and reused
for the same shape unless --fresh.

--retrieve move measures the same instances over C-MOVE instead of the ceiling and the
naive C-GET peer: (c) the engine by C-GET as above, then (d) the engine by C-MOVE into
this host's Storage SCP (`manage.py storescp`, started here; each study holds two PACS
associations, so the source allows twice --associations), and (e) a C-MOVE peer: dcmtk's
`movescu` moving each study into dcmtk's `storescp` writing files, then boto3 uploads one
by one. Keys added: move_engine_inst_s, move_peer_inst_s, ratio_move_peer (d/e),
ratio_move_get (d/c), move_worker_peak_rss_mb and move_worker_rss_quarters_mb.
--s3-rtt-ms / --s3-mbps put bench/linkproxy.py (delay and bandwidth cap) between S3 and
both the engine and the naive peer; the JSON line then adds link_mb_s, the fraction of it
each fills (the naive peer's while it uploads), and link_ceiling_mb_s: 32 PUTs at once
through the same link, what the link and SeaweedFS behind it carry on this machine.

--no-ceiling skips (a), which does not touch S3: with --s3-rtt-ms it leaves the link's
runs to the naive peer and the engine. Every JSON line also gives the load average at the
start and the end (the machine may be shared) and the worker's RSS samples and spread
(max - min, and after the first quarter, once the heap reached its high-water mark).

--big-study-mb N seeds one study of N MB (in its own Orthanc folder) and runs only the
engine: the JSON line then also gives the worker's peak RSS in each quarter of the run,
so a memory that grows with the study shows as a rising series.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
WORK = Path(os.environ.get("BENCH_MIGRATION_WORK", "/tmp/bench-migration"))
STORE = Path(os.environ.get("BENCH_MIGRATION_STORE", "/tmp/bench-migration-orthanc"))
CALLING_AET = "CCBENCH"
PACS_AET = "BENCHPACS"
BUCKET = "bench-migration"
QUEUE = "bench-migration"
LOOPBACK = "127.0.0.0/8,::1,localhost"
ENGINE_SCP_AET, PEER_SCP_AET = "BENCHSCP", "DCMSTORESCP"


# The worker and the Storage SCP run as in production, DEBUG off: with DEBUG on, Django
# keeps every SQL query of a connection (up to 9,000), which a long run shows as RSS creep.
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": os.urandom(32).hex(), "ALLOWED_HOSTS": "localhost",
              "DEVSTACK": "true"}  # fmt: skip


def setup_django():
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "var").mkdir(parents=True)
    from bench import django_env

    return django_env.start(
        WORK, f"sqlite:///{WORK / 'bench.sqlite3'}", MIGRATION_QUEUE=QUEUE, EGRESS_ALLOW=LOOPBACK
    )


# --- the legacy PACS -------------------------------------------------------------------


def start_pacs(shape, fresh, store=None):
    """Orthanc with the studies; reused from `store` (STORE) when it holds the shape."""
    from devstack.services.base import LOOPBACK
    from devstack.services.orthanc import Orthanc

    store = store or STORE
    marker = store / "shape.json"
    reuse = not fresh and marker.exists() and json.loads(marker.read_text()) == shape
    if not reuse:
        shutil.rmtree(store, ignore_errors=True)
    aets = {aet: (LOOPBACK, 1) for aet in (CALLING_AET, "GETSCU", "DCMGETSCU")}
    pacs = Orthanc(aet=PACS_AET, modalities=aets, workdir=store).start()
    if not reuse:
        seed(pacs, shape)
        marker.write_text(json.dumps(shape))
    return pacs


def seed(pacs, shape):
    from devstack import synthetic

    started = time.perf_counter()
    studies = synthetic.iter_studies(
        studies=shape["studies"], instances=shape["instances"], rows=shape["size"],
        cols=shape["size"], modality="CT", seed=4242,
    )  # fmt: skip
    with ThreadPoolExecutor(4) as pool:
        for datasets in studies:
            list(pool.map(pacs.upload, [synthetic.dataset_bytes(ds) for ds in datasets]))
    say(f"seeded {pacs.count_instances()} instances in {time.perf_counter() - started:.0f} s")


def study_uids(pacs):
    from dicomnet import scu
    from dicomnet.association import Peer

    return sorted(scu.find_study_uids(Peer("127.0.0.1", pacs.dicom_port, PACS_AET, CALLING_AET)))


# --- (a) the ceiling -------------------------------------------------------------------


def ceiling(pacs, uids, associations, nodelay=True):
    """pynetdicom C-GET of every study into memory, `associations` at a time: the issue's
    baseline. With `nodelay`, pynetdicom's AE gets TCP_NODELAY as the engine's own
    associations have (pynetdicom's two-PDU requests otherwise wait out the PACS's
    delayed ACK): the strict ceiling the ratio is taken against; without it, pynetdicom
    as it comes."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as Get

    from dicomnet.association import NoDelayAE

    def get(target, uid, sop_classes, received):
        ae = (NoDelayAE if nodelay else AE)(ae_title=CALLING_AET)
        ae.maximum_pdu_size = 0
        ae.add_requested_context(Get)
        for sop_class in sop_classes:
            ae.add_requested_context(sop_class)

        def on_store(event):
            received.append(len(event.encoded_dataset()))
            return 0x0000

        roles = [build_role(sop_class, scp_role=True) for sop_class in sop_classes]
        assoc = ae.associate(target.host, target.port, ae_title=PACS_AET, ext_neg=roles,
                             evt_handlers=[(evt.EVT_C_STORE, on_store)])  # fmt: skip
        identifier = Dataset()
        identifier.QueryRetrieveLevel, identifier.StudyInstanceUID = "STUDY", uid
        list(assoc.send_c_get(identifier, Get))
        assoc.release()

    label = "ceiling (pynetdicom C-GET into memory" + (", TCP_NODELAY)" if nodelay else ")")
    return into_memory(label, pacs, uids, associations, get)


def engine_retrieval(pacs, uids, associations):
    """The engine's own C-GET (`dicomnet.lean`) into memory: what the engine's
    retrieval alone can do, shown beside the ceiling (not a baseline)."""
    from migration import dicom

    def get(target, uid, sop_classes, received):
        dicom.c_get(target, uid, sop_classes, lambda data: received.append(len(data)))

    return into_memory("the engine's C-GET alone (into memory)", pacs, uids, associations, get)


def into_memory(label, pacs, uids, associations, get):
    """Time `get(target, uid, sop_classes, received)` over every study, `associations`
    at a time; it appends each instance's size to `received`."""
    from migration import dicom

    target = dicom.Pacs("127.0.0.1", pacs.dicom_port, PACS_AET, CALLING_AET, timeout=120)
    sop_classes = list(dicom.query_study(target, uids[0]).sop_classes)
    counts = []

    def one(uid):
        received = []
        get(target, uid, sop_classes, received)
        counts.append((len(received), sum(received)))

    started = time.perf_counter()
    with ThreadPoolExecutor(associations) as pool:
        list(pool.map(one, uids))
    return measure(label, started, counts)


# --- (b) the naive peer ----------------------------------------------------------------


def getscu_commands(pacs, uid, outdir):
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]
    dcmtk = ["getscu", "-S", "-aet", "DCMGETSCU", "-aec", PACS_AET, "127.0.0.1",
             str(pacs.dicom_port), "-k", "0008,0052=STUDY", "-k", f"0020,000D={uid}",
             "-od", str(outdir)]  # fmt: skip
    pynetdicom = [sys.executable, "-m", "pynetdicom", "getscu", "127.0.0.1", str(pacs.dicom_port),
                  "-S", "-aet", "GETSCU", "-aec", PACS_AET, *keys, "-od", str(outdir)]  # fmt: skip
    return {"dcmtk getscu": dcmtk, "pynetdicom getscu": pynetdicom}


def naive_retrieve(pacs, uids, tool):
    outdir = Path(tempfile.mkdtemp(prefix="bench-getscu-", dir=WORK))
    started = time.perf_counter()
    for uid in uids:
        command = getscu_commands(pacs, uid, outdir)[tool]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    files = [p for p in outdir.rglob("*") if p.is_file()]
    say(f"  {tool}: {len(files)} files in {elapsed:.1f} s ({len(files) / elapsed:.1f}/s)")
    return elapsed, files, outdir


def naive(pacs, uids, s3, expected, tools=None):
    """The faster getscu to disk (of `tools`, default both), then boto3 put_object one
    file at a time."""
    tools = tools or list(getscu_commands(pacs, "x", WORK))
    runs = {tool: naive_retrieve(pacs, uids, tool) for tool in tools}
    for tool, (_elapsed, files, _outdir) in runs.items():
        if len(files) != expected:
            raise SystemExit(f"{tool} retrieved {len(files)} of {expected} instances")
    tool = min(runs, key=lambda name: runs[name][0])
    retrieve_s, files, outdir = runs[tool]
    size = sum(path.stat().st_size for path in files)
    client = s3.client()
    started = time.perf_counter()
    for path in files:
        client.put_object(Bucket=BUCKET, Key=f"naive/{path.name}", Body=path.read_bytes())
    upload_s = time.perf_counter() - started
    upload_mb_s = size / upload_s / 1e6
    for _elapsed, _files, folder in runs.values():
        shutil.rmtree(folder, ignore_errors=True)
    say(f"  boto3 one by one: {len(files)} uploads in {upload_s:.1f} s")
    result = rate(
        f"naive peer ({tool} + boto3 one by one)", retrieve_s + upload_s, len(files), size
    )
    return {**result, "upload_mb_s": upload_mb_s}


# --- (c) the engine --------------------------------------------------------------------


class Worker:
    """A Celery worker on the bench database, consuming the engine's queue; its process
    tree's RSS is sampled while it runs."""

    def __init__(self, s3, associations, threads):
        env = dict(
            os.environ,
            **PRODUCTION,
            MIGRATION_UPLOAD_THREADS=str(threads),
            CC_SECRET_BENCH_S3_KEY=s3.access_key,
            CC_SECRET_BENCH_S3_SECRET=s3.secret_key,
            PYTHONUNBUFFERED="1",
        )
        self.log = open(WORK / "worker.log", "wb")  # noqa: SIM115 (closed by stop())
        command = [sys.executable, "-m", "celery", "-A", "commandcenter", "worker", "-l",
                   "INFO", "-Q", QUEUE, "--concurrency", str(associations), "-n",
                   "bench@%h", "--without-mingle", "--without-gossip"]  # fmt: skip
        self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.peak_process_mb = self.peak_tree_mb = 0.0
        self.samples = []  # (seconds since sampling began, largest process RSS in MB)
        self.sampling = threading.Event()

    def wait_ready(self):
        from commandcenter.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any("bench@" in name for reply in app.control.ping(timeout=0.5) for name in reply):
                return
        raise SystemExit("the Celery worker did not start; see /tmp/bench-migration/worker.log")

    def sample(self):
        import psutil

        root = psutil.Process(self.proc.pid)
        started = time.perf_counter()
        while not self.sampling.is_set():
            try:
                rss = [p.memory_info().rss for p in [root, *root.children(recursive=True)]]
            except psutil.Error:
                continue
            self.samples.append((time.perf_counter() - started, max(rss) / 2**20))
            self.peak_process_mb = max(self.peak_process_mb, max(rss) / 2**20)
            self.peak_tree_mb = max(self.peak_tree_mb, sum(rss) / 2**20)
            time.sleep(0.1)

    def quarters(self):
        """The largest process's peak RSS (MB) in each quarter of the sampled time."""
        if not self.samples:
            return []
        end = self.samples[-1][0] or 1.0
        peaks = [0.0] * 4
        for at, mb in self.samples:
            quarter = min(3, int(4 * at / end))
            peaks[quarter] = max(peaks[quarter], mb)
        return [round(mb, 1) for mb in peaks]

    def series(self, points=20):
        """The largest process's RSS (MB) at `points` evenly spaced moments of the run."""
        if not self.samples:
            return []
        step = max(1, len(self.samples) // points)
        return [round(mb, 1) for _at, mb in self.samples[::step]]

    def spread(self, warm=0.25):
        """max - min of the largest process's RSS (MB) over the whole run, and after the
        first `warm` of it (the first studies fill the heap to its high-water mark)."""
        if not self.samples:
            return None, None
        end = self.samples[-1][0] or 1.0
        late = [mb for at, mb in self.samples if at >= warm * end] or [0.0]
        every = [mb for _at, mb in self.samples]
        return round(max(every) - min(every), 1), round(max(late) - min(late), 1)

    def stop(self):
        from devstack.services.base import terminate_group

        terminate_group(self.proc, 15)
        self.log.close()


def engine(pacs, s3, uids, associations, threads, meter, method="get"):
    from inventory.models import PacsSource, Study
    from migration import actions
    from migration.models import Destination, StudyState, Wave, WaveState

    name = "bench" if method == "get" else f"bench-{method}"
    per_study = 2 if method == "move" else 1  # the C-MOVE and the PACS's C-STORE back
    source = PacsSource.objects.create(name=name, ae_title=PACS_AET, host="127.0.0.1",
                                       port=pacs.dicom_port, calling_ae_title=CALLING_AET,
                                       retrieve_method=method, move_destination=ENGINE_SCP_AET,
                                       max_associations=associations * per_study)  # fmt: skip
    Study.objects.bulk_create(Study(source=source, study_uid=uid) for uid in uids)
    destination = Destination.objects.create(
        name=name, kind="s3", bucket=BUCKET, prefix=prefix_of(method),
        endpoint_url=s3.endpoint_url, region=s3.region, access_key_env="CC_SECRET_BENCH_S3_KEY",
        secret_key_env="CC_SECRET_BENCH_S3_SECRET",
    )  # fmt: skip
    worker = Worker(s3, associations, threads)
    try:
        worker.wait_ready()
        worker.cpu_at_start = CpuMeter(worker=worker.proc.pid).start
        sampler = threading.Thread(target=worker.sample, daemon=True)
        sampler.start()
        wave, _info = actions.create_wave(name=name, source=source, destination=destination)
        started = time.perf_counter()
        actions.change_wave(wave, "start")
        while Wave.objects.get(pk=wave.pk).state != WaveState.DONE:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        worker.sampling.set()
        sampler.join()
        meter.procs["worker"] = __import__("psutil").Process(worker.proc.pid)
        meter.start.update(worker.cpu_at_start)
        meter.report("the engine")
    finally:
        worker.stop()
    rows = wave.ledger.all()
    done = rows.filter(state=StudyState.DONE).count()
    instances = sum(rows.values_list("instances_stored", flat=True))
    size = sum(rows.values_list("bytes_stored", flat=True))
    verb = "C-MOVE" if method == "move" else "C-GET"
    result = rate(f"engine (Celery, {verb} → SeaweedFS, verified)", elapsed, instances, size)
    result.update(done=done, worker=worker, wave=wave)
    return result


def prefix_of(method):
    return "engine" if method == "get" else f"engine-{method}"


def verify(s3, run, expected, method="get"):
    """The bench's own check: every manifest object of the engine's wave is stored, with
    its size, and SeaweedFS's SHA-256 of each equals the manifest's (a HEAD per object)."""
    from migration.models import StoredInstance
    from migration.storage import _hex

    client = s3.client()
    listed, prefix = {}, prefix_of(method) + "/"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        listed.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    rows = StoredInstance.objects.filter(ledger__wave=run["wave"]).select_related("ledger")
    stored = [(row.key, row.size, row.sha256) for row in rows]
    same_sizes = all(listed.get(key) == size for key, size, _sha in stored)

    def head(row):
        answer = client.head_object(Bucket=BUCKET, Key=row[0], ChecksumMode="ENABLED")
        return _hex(answer.get("ChecksumSHA256")) == row[2]

    with ThreadPoolExecutor(8) as pool:
        checksums = all(pool.map(head, stored))
    objects = [key for key in listed if key.endswith(".dcm")]
    return len(stored) == len(objects) == expected and same_sizes and checksums


# --- (d) and (e): C-MOVE ---------------------------------------------------------------


def scp_settings():
    """This host's Storage SCP for the engine's C-MOVEs (settings for the bench, its
    worker and `manage.py storescp`)."""
    from django.conf import settings

    from devstack.services.base import free_port

    values = {
        "MIGRATION_STORAGE_SCP_AET": ENGINE_SCP_AET,
        "MIGRATION_STORAGE_SCP_PORT": str(free_port()),
        "MIGRATION_STORAGE_SCP_SOCKET": str(WORK / "storescp.sock"),
        "MIGRATION_STORAGE_SCP_ASIDE": str(WORK / "storescp-aside"),
    }
    os.environ.update(values)
    for name, value in values.items():
        setattr(settings, name, int(value) if name.endswith("PORT") else value)


def start_process(name, command, ready):
    """A child process logging to WORK/<name>.log, once `ready(log text)` holds."""
    log = open(WORK / f"{name}.log", "wb")  # noqa: SIM115 (the process owns it)
    proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, **PRODUCTION), start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not ready((WORK / f"{name}.log").read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start; see {WORK / f'{name}.log'}")
        time.sleep(0.1)
    return proc


def by_move(pacs, s3, uids, args, expected, pids):
    from devstack.services.base import LOOPBACK, terminate_group

    port = int(os.environ["MIGRATION_STORAGE_SCP_PORT"])
    pacs.add_modality(ENGINE_SCP_AET, LOOPBACK, port)
    scp = start_process("storescp", [sys.executable, "manage.py", "storescp"],
                        lambda text: "storescp: AE" in text)  # fmt: skip
    try:
        meter = CpuMeter(**pids, storescp=scp.pid)
        run = engine(pacs, s3, uids, args.associations, args.threads, meter, method="move")
        verified = run["done"] == len(uids) and verify(s3, run, expected, method="move")
    finally:
        terminate_group(scp, 15)
    meter = CpuMeter(**pids)
    peer = move_peer(pacs, uids, s3, expected)
    meter.report("the C-MOVE peer")
    return {"engine": run, "peer": peer, "verified": verified}


def _count_files(folder):
    return sum(1 for path in folder.rglob("*") if path.is_file())


def move_peer(pacs, uids, s3, expected):
    """dcmtk's movescu, study by study, into dcmtk's storescp writing files; then boto3
    put_object one file at a time."""
    from devstack.services.base import LOOPBACK, free_port, port_open, terminate_group

    port, outdir = free_port(), Path(tempfile.mkdtemp(prefix="bench-storescp-", dir=WORK))
    pacs.add_modality(PEER_SCP_AET, LOOPBACK, port)
    command = ["storescp", "-aet", PEER_SCP_AET, "-od", str(outdir), "+xa", str(port)]
    scp = start_process("dcmtk-storescp", command, lambda _text: port_open(port))
    started = time.perf_counter()
    try:
        for n, uid in enumerate(uids, 1):
            move = ["movescu", "-S", "-aet", CALLING_AET, "-aec", PACS_AET, "-aem", PEER_SCP_AET,
                    "127.0.0.1", str(pacs.dicom_port), "-k", "0008,0052=STUDY",
                    "-k", f"0020,000D={uid}"]  # fmt: skip
            for _attempt in range(3):  # a loaded PACS may time a sub-operation out: again
                subprocess.run(move, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if _count_files(outdir) >= expected * n // len(uids):
                    break
        retrieve_s = time.perf_counter() - started
    finally:
        terminate_group(scp, 15)
    files = [p for p in outdir.rglob("*") if p.is_file()]
    if len(files) != expected:
        raise SystemExit(f"the C-MOVE peer received {len(files)} of {expected} instances")
    client, size = s3.client(), sum(path.stat().st_size for path in files)
    started = time.perf_counter()
    for path in files:
        client.put_object(Bucket=BUCKET, Key=f"peer-move/{path.name}", Body=path.read_bytes())
    upload_s = time.perf_counter() - started
    shutil.rmtree(outdir, ignore_errors=True)
    say(f"  movescu into storescp: {len(files)} files in {retrieve_s:.1f} s; "
        f"boto3 one by one: {upload_s:.1f} s")  # fmt: skip
    return rate("C-MOVE peer (movescu → storescp + boto3)", retrieve_s + upload_s, len(files), size)


# --- reporting -------------------------------------------------------------------------


def measure(label, started, counts):
    elapsed = time.perf_counter() - started
    return rate(label, elapsed, sum(n for n, _ in counts), sum(b for _, b in counts))


def rate(label, seconds, instances, size):
    result = {"label": label, "seconds": seconds, "instances": instances,
              "inst_s": instances / seconds,
              "mb_s": None if size is None else size / seconds / 1e6}  # fmt: skip
    mb = "" if size is None else f", {result['mb_s']:.1f} MB/s"
    per_second = f"{result['inst_s']:.1f} instances/s{mb}"
    say(f"{label}: {instances} instances in {seconds:.1f} s = {per_second}")
    return result


class CpuMeter:
    """CPU seconds used by the PACS, the S3 store and the worker while a phase runs: on a
    2-core machine they compete with the engine, so the report shows where time went."""

    def __init__(self, **pids):
        import psutil

        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.start = self._read()

    def _read(self):
        import psutil

        used = {}
        for name, proc in self.procs.items():
            try:
                tree = [proc, *proc.children(recursive=True)]
                used[name] = sum(p.cpu_times().user + p.cpu_times().system for p in tree)
                used[name + " sys"] = sum(p.cpu_times().system for p in tree)
            except psutil.Error:
                used[name] = 0.0
        return used

    def report(self, phase):
        end = self._read()
        spent = ", ".join(f"{name} {end[name] - self.start[name]:.1f} s" for name in end)
        say(f"  CPU during {phase}: {spent}")


def say(text):
    print(text, flush=True)


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--instances", type=int, default=50, help="per study")
    parser.add_argument("--size", type=int, default=512, help="rows and columns (16-bit)")
    parser.add_argument("--associations", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="upload threads per study")
    parser.add_argument("--fresh", action="store_true", help="re-seed the PACS")
    parser.add_argument(
        "--retrieve", choices=["get", "move"], default="get",
        help="move: the engine by C-MOVE and a C-MOVE peer, against the engine by C-GET",
    )  # fmt: skip
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="skip the baselines, e.g. to watch memory with --studies 1 --instances 2000 (1 GB)",
    )
    parser.add_argument(
        "--big-study-mb",
        type=int,
        metavar="N",
        help="one study of N MB in its own Orthanc folder, engine only: peak RSS per quarter",
    )
    parser.add_argument(
        "--no-ceiling", action="store_true",
        help="skip the C-GET ceiling (no S3 in it), e.g. for the link's keys: naive and engine",
    )  # fmt: skip
    parser.add_argument(
        "--naive-getscu", action="append", choices=["dcmtk getscu", "pynetdicom getscu"],
        help="the naive peer's retrieval tool(s) (default both; the link's naive_link_fraction "
        "is taken over its uploads alone, whichever tool retrieved)",
    )  # fmt: skip
    parser.add_argument("--s3-rtt-ms", type=float, help="round-trip time added to S3")
    parser.add_argument("--s3-mbps", type=float, help="bandwidth cap to S3 (Mbit/s)")
    args = parser.parse_args()
    if args.big_study_mb:
        instance_mb = args.size * args.size * 2 / 2**20
        args.studies, args.engine_only = 1, True
        args.instances = max(1, round(args.big_study_mb / instance_mb))
    return args


def main():
    args = parse()
    load_at_start = os.getloadavg()[0]
    redis = setup_django()
    if args.retrieve == "move":
        scp_settings()
    from devstack.services.seaweedfs import SeaweedS3

    shape = {"studies": args.studies, "instances": args.instances, "size": args.size}
    store = STORE.with_name(STORE.name + "-big") if args.big_study_mb else STORE
    pacs = start_pacs(shape, args.fresh, store)
    s3 = SeaweedS3(volume_size_limit_mb=1024).start()
    try:
        s3.create_bucket(BUCKET)
        link, s3 = start_link(s3, args) if args.s3_rtt_ms or args.s3_mbps else (None, s3)
        uids = study_uids(pacs)
        expected = args.studies * args.instances
        say(f"{len(uids)} studies, {expected} instances of {args.size}x{args.size}; "
            f"{args.associations} association(s), {args.threads} upload threads")  # fmt: skip
        pids = {"pacs": pacs.proc.pid, "s3": s3.proc.pid}
        a = b = None
        if not args.engine_only and args.retrieve == "get":
            if not args.no_ceiling:
                meter = CpuMeter(**pids)
                a = ceiling(pacs, uids, args.associations)
                meter.report("the ceiling")
                a["stock"] = ceiling(pacs, uids, args.associations, nodelay=False)
                a["lean"] = engine_retrieval(pacs, uids, args.associations)
            meter = CpuMeter(**pids)
            b = naive(pacs, uids, s3, expected, args.naive_getscu)
            meter.report("the naive peer")
        meter = CpuMeter(**pids)
        c = engine(pacs, s3, uids, args.associations, args.threads, meter)
        verified = c["done"] == len(uids) and verify(s3, c, expected)
        if args.retrieve == "move":
            c["move"] = by_move(pacs, s3, uids, args, expected, pids)
            verified = verified and c["move"]["verified"]
        if a:  # the ceiling again, after the engine: the better of the two counts
            again = ceiling(pacs, uids, args.associations)
            a.update({k: v for k, v in again.items() if again["inst_s"] > a["inst_s"]})
        link_keys = link_report(link, s3, b, c, args.size * args.size * 2)
    finally:
        s3.stop()
        pacs.stop()
        redis.stop()
    load = {"load_avg_1m_start": round(load_at_start, 2),
            "load_avg_1m_end": round(os.getloadavg()[0], 2)}  # fmt: skip
    report(a, b, c, verified, {**link_keys, **load})


def start_link(s3, args):
    from bench import linkproxy

    rtt, mbps = args.s3_rtt_ms or 0.0, args.s3_mbps or 1e5
    link, linked = linkproxy.start_link(s3, rtt, mbps)
    say(f"S3 through a link of {rtt:g} ms RTT, {mbps:g} Mbit/s ({link.link_mb_s:.1f} MB/s)")
    return link, linked


def link_report(link, s3, b, c, size):
    """The link's keys: its capacity, the fraction each filled, what it carries at most."""
    if link is None:
        return {}
    from bench import linkproxy

    most = linkproxy.ceiling(s3, BUCKET, size)
    link.stop()
    keys = {
        "link_mb_s": round(link.link_mb_s, 1), "link_ceiling_mb_s": round(most, 1),
        "engine_link_mb_s": round(c["mb_s"], 1),
        "engine_link_fraction": round(c["mb_s"] / link.link_mb_s, 3),
        "engine_ceiling_fraction": round(c["mb_s"] / most, 3),
        "naive_link_fraction": _round(b and b["upload_mb_s"] / link.link_mb_s, 3),
    }  # fmt: skip
    say(f"link: {keys}")
    return keys


def report(a, b, c, verified, link_keys):
    """The summary lines, then the JSON line (`link_keys`: the link's and the load's)."""
    worker = c["worker"]
    ratio_ceiling = c["inst_s"] / a["inst_s"] if a else None
    ratio_naive = c["inst_s"] / b["inst_s"] if b else None
    ratio_stock = c["inst_s"] / a["stock"]["inst_s"] if a else None
    if a and b:
        say(f"engine / ceiling = {ratio_ceiling:.2f} (target ≥ 0.6); "
            f"engine / naive = {ratio_naive:.2f} (target ≥ 3); "
            f"engine / stock pynetdicom ceiling = {ratio_stock:.2f}")  # fmt: skip
    say(f"worker peak RSS: {worker.peak_process_mb:.0f} MB per process (target ≤ 250), "
        f"{worker.peak_tree_mb:.0f} MB for the whole worker; verified: {verified}")  # fmt: skip
    say(f"largest worker process's peak RSS per quarter of the run: {worker.quarters()} MB")
    print(json.dumps({
        "engine_inst_s": round(c["inst_s"], 1), "ceiling_inst_s": _round(a and a["inst_s"], 1),
        "naive_inst_s": _round(b and b["inst_s"], 1), "ratio_ceiling": _round(ratio_ceiling, 2),
        "ratio_naive": _round(ratio_naive, 2),
        "stock_ceiling_inst_s": _round(a and a["stock"]["inst_s"], 1),
        "ratio_stock_ceiling": _round(ratio_stock, 2),
        "engine_cget_inst_s": _round(a and a["lean"]["inst_s"], 1),
        "worker_peak_rss_mb": round(worker.peak_process_mb, 1),
        "worker_tree_rss_mb": round(worker.peak_tree_mb, 1), "verified": verified,
        "worker_rss_quarters_mb": worker.quarters(),
        "worker_rss_spread_after_warmup_mb": worker.spread()[1], **move_keys(c), **link_keys,
    }))  # fmt: skip


def move_keys(c):
    move = c.get("move")
    if move is None:
        return {}
    engine_s, peer_s = move["engine"]["inst_s"], move["peer"]["inst_s"]
    worker = move["engine"]["worker"]
    say(f"C-MOVE engine / C-MOVE peer = {engine_s / peer_s:.2f} (target ≥ 3); "
        f"C-MOVE engine / C-GET engine = {engine_s / c['inst_s']:.2f} (target ≥ 0.8); "
        f"C-MOVE worker peak RSS per quarter: {worker.quarters()} MB")  # fmt: skip
    return {
        "move_engine_inst_s": round(engine_s, 1), "move_peer_inst_s": round(peer_s, 1),
        "ratio_move_peer": round(engine_s / peer_s, 2),
        "ratio_move_get": round(engine_s / c["inst_s"], 2),
        "move_worker_peak_rss_mb": round(worker.peak_process_mb, 1),
        "move_worker_rss_quarters_mb": worker.quarters(),
        "move_worker_rss_samples_mb": worker.series(),
        "move_worker_rss_spread_mb": worker.spread()[0],
        "move_worker_rss_spread_after_warmup_mb": worker.spread()[1],
        "move_verified": move["verified"],
    }  # fmt: skip


def _round(value, digits):
    return None if value is None else round(value, digits)


if __name__ == "__main__":
    main()
