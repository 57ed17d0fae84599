"""Start the Milvus 2.3 standalone server that pip `milvus` ships, on free ports, beside any other.

`milvus.MilvusServer` finds free ports for the services its config template names, but its embedded etcd
keeps etcd's fixed defaults (client 2379, peer 2380), so a second server on the same machine (another
test session, a parallel CI job) fails to start. Here etcd gets its own config file with free ports
(Milvus reads it from `etcd.config.path`), and a server that dies while starting is reported at once.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from milvus import MilvusServer, MilvusServerConfig

ETCD_CONFIG = """name: default
listen-client-urls: http://127.0.0.1:{client}
advertise-client-urls: http://127.0.0.1:{client}
listen-peer-urls: http://127.0.0.1:{peer}
initial-advertise-peer-urls: http://127.0.0.1:{peer}
initial-cluster: default=http://127.0.0.1:{peer}
"""
EMBEDDED_ETCD = "  use:\n    embed: true"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on (free when this returns)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def configure_server(base_dir: Path) -> MilvusServer:
    """A server, not yet started, keeping everything under `base_dir`; `listen_port` is its gRPC port."""
    base_dir.mkdir(parents=True, exist_ok=True)
    proxy, client, peer = free_ports(3)
    (base_dir / "etcd.yaml").write_text(ETCD_CONFIG.format(client=client, peer=peer))
    packaged = MilvusServerConfig()
    if EMBEDDED_ETCD not in packaged.template_text:
        raise RuntimeError("pip milvus's config template has no embedded etcd section to configure")
    etcd_config = f"  config:\n    path: {base_dir / 'etcd.yaml'}\n{EMBEDDED_ETCD}"
    template = base_dir / "milvus.yaml.template"
    template.write_text(packaged.template_text.replace(EMBEDDED_ETCD, etcd_config, 1))
    config = MilvusServerConfig(template=str(template))
    config.glog_conf_file = packaged.glog_conf_file  # set only for the packaged template
    server = MilvusServer(config, wait_for_started=False, proxy_port=proxy, etcd_port=client)
    server.set_base_dir(str(base_dir))
    return server


def start(server: MilvusServer, timeout_s: float = 180) -> None:
    """Start `server` and wait until it is healthy; RuntimeError at once if it exits while starting."""
    server.start()
    deadline = time.monotonic() + timeout_s
    while True:
        code = server.server_proc.poll()
        if code is not None:
            logs = Path(server.config.base_data_dir) / "logs"
            raise RuntimeError(f"it exited with code {code} while starting (logs in {logs})")
        try:
            server.wait_started(timeout=2000)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
