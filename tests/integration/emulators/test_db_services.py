"""Database and API emulators with real clients: config changes what the client sees,
and what the client does reaches the events."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pymongo
import pymysql
import redis
from cryptography import x509
from cryptography.x509.oid import NameOID
from tests import emulator_harness as h
from tests.support import require

KUBECTL = Path.home() / ".cache/decnet-operator/bin/current/kubectl"


def test_https_certificate_and_server_header_follow_config() -> None:
    config = {"hostname": "intranet.acme.local", "serverHeader": "Apache/2.4.62 (Debian)"}
    with h.run("https", config) as emu:
        pem = ssl.get_server_certificate(("127.0.0.1", emu.port(443)), timeout=15)
        cert = x509.load_pem_x509_certificate(pem.encode())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
            "intranet.acme.local"
        out = subprocess.run(["curl", "-skI", "-m", "15", f"https://127.0.0.1:{emu.port(443)}/"],
                             capture_output=True, text=True, timeout=30).stdout
        assert "Server: Apache/2.4.62 (Debian)" in out
        plain = subprocess.run(["curl", "-s", "--http0.9", "-m", "15", f"http://127.0.0.1:{emu.port(443)}/"],
                               capture_output=True, text=True, timeout=30).stdout
        assert "speaking plain HTTP to an SSL-enabled server port" in plain


def test_mysql_version_and_an_accepted_user_querying() -> None:
    config = {"version": "5.7.44-log", "users": {"report": "r3port"}, "databases": ["payroll"]}
    with h.run("mysql", config) as emu:
        conn = pymysql.connect(host="127.0.0.1", port=emu.port(3306), user="report",
                               password="r3port", connect_timeout=15)
        try:
            assert conn.get_server_info() == "5.7.44-log"
            with conn.cursor() as cur:
                cur.execute("SHOW DATABASES")
                assert cur.fetchall() == (("payroll",),)
        finally:
            conn.close()
        assert emu.wait_event("query", query="SHOW DATABASES").get("username") == "report"


def test_mysql_debian_client_gives_its_password_and_hash() -> None:
    require(shutil.which("mysql") is not None, "the mysql client (default-mysql-client)")
    with h.run("mysql") as emu:
        out = subprocess.run(["mysql", "-h", "127.0.0.1", "-P", str(emu.port(3306)), "-u",
                              "backup", "-pB4ckup!", "-e", "select 1"], capture_output=True,
                             text=True, timeout=30)
        assert "ERROR 1045 (28000): Access denied for user 'backup'" in out.stderr
        event = emu.wait_event("auth", username="backup")
        assert event.get("password") == "B4ckup!" and event.get("program") == "mysql"
        assert len(event.get("password_hash")) == 40 and len(event.get("salt")) == 40


def test_postgres_accepted_user_sees_configured_version_and_queries_are_logged() -> None:
    require(shutil.which("psql") is not None, "psql (postgresql-client)")
    config = {"version": "13.14 (Debian 13.14-0+deb11u1)", "users": {"ro": "ro-pass"}}
    with h.run("postgres", config) as emu:
        out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(emu.port(5432)), "-U", "ro",
                              "-d", "crm", "-tAc", "SHOW server_version"], capture_output=True,
                             text=True, timeout=30, env=dict(os.environ, PGPASSWORD="ro-pass"))
        assert out.stdout.strip() == "13.14 (Debian 13.14-0+deb11u1)", out.stderr
        event = emu.wait_event("query", query="SHOW server_version")
        assert event.get("database") == "crm" and event.get("username") == "ro"


def test_redis_password_config_means_noauth_for_redis_cli() -> None:
    require(shutil.which("redis-cli") is not None, "redis-cli (redis-tools)")
    with h.run("redis", {"password": "cache-pw", "version": "6.2.14"}) as emu:
        port = str(emu.port(6379))
        out = subprocess.run(["redis-cli", "-p", port, "GET", "counter"], capture_output=True,
                             text=True, timeout=30)
        assert "NOAUTH Authentication required" in out.stdout + out.stderr
        client = redis.Redis(host="127.0.0.1", port=int(port), password="cache-pw",
                             socket_timeout=15)
        try:
            assert client.info("server")["redis_version"] == "6.2.14"
        finally:
            client.close()
        assert emu.wait_event("auth", password="cache-pw").get("username") == "default"


def test_mongodb_version_and_databases_follow_config() -> None:
    config = {"version": "4.4.29", "databases": {"admin": 4096, "inventory": 1 << 20}}
    with h.run("mongodb", config) as emu:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            host="127.0.0.1", port=emu.port(27017), directConnection=True,
            serverSelectionTimeoutMS=15000)
        try:
            assert client.server_info()["version"] == "4.4.29"
            assert client.list_database_names() == ["admin", "inventory"]
            list(client.inventory.items.find({"sku": {"$gt": ""}}))
        finally:
            client.close()
        event = emu.wait_event("query", command="find", collection="items")
        assert json.loads(event.get("query")) == {"sku": {"$gt": ""}}


def test_docker_engine_version_and_exec_capture() -> None:
    import docker

    with h.run("docker-api", {"version": "20.10.24", "apiVersion": "1.41"}) as emu:
        client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{emu.port(2375)}", timeout=15)
        try:
            assert client.version()["Version"] == "20.10.24"
            web = client.containers.get("web")
            web.exec_run("cat /etc/shadow")
        finally:
            client.close()
        assert emu.wait_event("command", action="exec").get("command") == "cat /etc/shadow"


def test_elasticsearch_cluster_name_and_delete_logged() -> None:
    with h.run("elasticsearch", {"clusterName": "logging-prod", "version": "7.17.18"}) as emu:
        base = f"http://127.0.0.1:{emu.port(9200)}"
        banner = json.loads(subprocess.run(["curl", "-s", "-m", "15", base + "/"],
                                           capture_output=True, text=True, timeout=30).stdout)
        assert banner["cluster_name"] == "logging-prod"
        assert banner["version"]["number"] == "7.17.18"
        subprocess.run(["curl", "-s", "-m", "15", "-X", "DELETE", base + "/orders"],
                       capture_output=True, timeout=30)
        assert emu.wait_event("command", method="DELETE").get("path") == "/orders"


def test_kubectl_token_is_captured_and_version_follows_config() -> None:
    require(KUBECTL.exists(), "kubectl in ~/.cache/decnet-operator/bin/current")
    with h.run("k8s", {"gitVersion": "v1.27.9"}) as emu:
        url = f"https://127.0.0.1:{emu.port(6443)}"
        version = json.loads(subprocess.run(["curl", "-sk", "-m", "15", url + "/version"],
                                            capture_output=True, text=True, timeout=30).stdout)
        assert version["gitVersion"] == "v1.27.9" and version["minor"] == "27"
        out = subprocess.run([str(KUBECTL), "--server", url, "--insecure-skip-tls-verify",
                              "--token", "stolen-sa-token", "get", "secrets", "-A"],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode != 0 and "logged in" in out.stderr
        event = emu.wait_event("auth", token="stolen-sa-token")
        assert event.get("mechanism") == "bearer" and event.get("client").startswith("kubectl/")


def test_mssql_login_captured_over_tds_tls_and_in_the_clear() -> None:
    from impacket import tds

    for encryption in (True, False):
        with h.run("mssql", {"encryption": encryption, "version": "14.0.3456"}) as emu:
            client = tds.MSSQL("127.0.0.1", emu.port(1433))
            client.connect()
            try:
                assert not client.login(None, "svc_backup", "Backup#2024")
                assert client.replies[tds.TDS_ERROR_TOKEN][0]["Number"] == 18456
            finally:
                client.disconnect()
            event = emu.wait_event("auth", username="svc_backup")
            assert event.get("password") == "Backup#2024"
            assert event.get("encrypted") == ("true" if encryption else "false")


def test_postgres_login_over_tls_and_with_ssl_off() -> None:
    require(shutil.which("psql") is not None, "psql (postgresql-client)")
    for ssl_on, mode in ((True, "require"), (False, "disable")):
        with h.run("postgres", {"ssl": ssl_on}) as emu:
            out = subprocess.run(["psql", f"host=127.0.0.1 port={emu.port(5432)} user=dba "
                                  f"dbname=ledger sslmode={mode}", "-c", "select 1"],
                                 capture_output=True, text=True, timeout=30,
                                 env=dict(os.environ, PGPASSWORD="ledger!"))
            assert "password authentication failed" in out.stderr, out.stderr
            event = emu.wait_event("auth", username="dba")
            assert event.get("password") == "ledger!"
            assert event.get("encrypted") == ("true" if ssl_on else "false")
