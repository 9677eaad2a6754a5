import asyncio

from serve_app.observability.cluster import (
    ClusterStats,
    DeploymentStats,
    GpuProbe,
    GpuStats,
    InFlight,
    NodeStats,
    collect_stats,
    system_stats,
)
from serve_app.observability.cpu import CpuMeter

TOP_KEYS = {"status", "gpu_count", "gpus", "cpu_percent", "ram_used", "ram_total"}


def test_shape_without_gpus():
    body = system_stats(0, [], 37.5)
    assert set(body) == TOP_KEYS
    assert body["status"] == "Idle" and body["gpu_count"] == 0 and body["gpus"] == []
    assert body["cpu_percent"] == 37.5
    assert isinstance(body["ram_used"], float) and isinstance(body["ram_total"], float)
    assert 0 < body["ram_used"] <= body["ram_total"] < 100_000


def test_gpu_entries_and_busy():
    gpu = GpuStats(name="H100", memory_used=1.5, memory_total=80.0, utilization=42.0)
    body = system_stats(2, [gpu], 0.0)
    assert body["status"] == "Busy" and body["gpu_count"] == 1
    assert body["gpus"] == [
        {"name": "H100", "memory_used": 1.5, "memory_total": 80.0, "utilization": 42.0}
    ]


def test_no_driver_means_no_gpus():
    probe = GpuProbe()
    assert probe.read() == [] or all(isinstance(g, GpuStats) for g in probe.read())


def test_in_flight_counter():
    counter = InFlight()
    with counter.track(), counter.track():
        assert counter.count == 2
    assert counter.count == 0
    try:
        with counter.track():
            raise ValueError
    except ValueError:
        pass
    assert counter.count == 0


class Provider:
    def __init__(self, stats=None, fail=False):
        self.stats = stats or ClusterStats()
        self.fail = fail

    async def cluster_stats(self):
        if self.fail:
            raise RuntimeError("ray is down")
        return self.stats


def test_cluster_keys_only_with_a_provider():
    counter, probe, cpu = InFlight(), GpuProbe(), CpuMeter()
    assert set(asyncio.run(collect_stats(counter, probe, cpu))) == TOP_KEYS
    node = NodeStats("n1", "10.0.0.1", True, 12.5, 3.0, 16.0)
    deployment = DeploymentStats("app", "VisionLanguageModel", "HEALTHY", 2, 2, 1.0, 0.0)
    body = asyncio.run(
        collect_stats(counter, probe, cpu, Provider(ClusterStats([node], [deployment])))
    )
    assert set(body) == TOP_KEYS | {"nodes", "deployments"}
    assert body["status"] == "Busy"  # the cluster reports ongoing work
    assert body["nodes"][0]["gpus"] == [] and body["nodes"][0]["address"] == "10.0.0.1"
    assert body["deployments"][0]["replicas"] == 2
    failed = asyncio.run(collect_stats(counter, probe, cpu, Provider(fail=True)))
    assert failed["nodes"] == [] and failed["deployments"] == [] and failed["status"] == "Idle"


class FakeNvml:
    """Just enough of pynvml for one GPU."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMemoryInfo(self, handle):
        from types import SimpleNamespace

        return SimpleNamespace(used=3 * 2**30, total=80 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle):
        from types import SimpleNamespace

        return SimpleNamespace(gpu=55)


def test_gpu_probe_reads_nvml(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pynvml", FakeNvml())
    (gpu,) = GpuProbe().read()
    assert gpu == GpuStats("NVIDIA H100 80GB HBM3", 3.0, 80.0, 55.0)


def test_gpu_probe_without_driver(monkeypatch):
    fake = FakeNvml()

    def fail():
        raise FakeNvml.NVMLError("Driver Not Loaded")

    fake.nvmlInit = fail
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    probe = GpuProbe()
    assert probe.read() == [] and probe.read() == []
