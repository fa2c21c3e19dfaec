"""Database and API probes: each a real client doing what an intruder's tool does first."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

from tests.probes import NMAP, Expect, Port, probe

NMAP["https"] = (443, "tcp", "Apache")
NMAP["docker-api"] = (2375, "tcp", "Docker")
NMAP["k8s"] = (6443, "tcp", "https")  # nmap 7.93 has no kube-apiserver signature
NMAP["elasticsearch"] = (9200, "tcp", "Elasticsearch")
NMAP["mysql"] = (3306, "tcp", "MySQL")
NMAP["postgres"] = (5432, "tcp", "PostgreSQL")
NMAP["redis"] = (6379, "tcp", "Redis")
NMAP["mongodb"] = (27017, "tcp", "MongoDB")
NMAP["mssql"] = (1433, "tcp", "Microsoft SQL Server")


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-s", "-m", "15", *args], capture_output=True, text=True,
                          timeout=30)


@probe("https")
def https(host: str, port: Port) -> list[Expect]:
    out = _curl("-k", "-u", "webadmin:Winter2024", "-A", "probe-tls/1.0",
                f"https://{host}:{port(443)}/admin/")
    assert out.returncode == 0, out.stderr
    return [Expect("request", {"method": "GET", "path": "/admin/", "user_agent": "probe-tls/1.0"}),
            Expect("auth", {"username": "webadmin", "password": "Winter2024"})]


@probe("docker-api")
def docker_api(host: str, port: Port) -> list[Expect]:
    import docker

    client = docker.DockerClient(base_url=f"tcp://{host}:{port(2375)}", timeout=15)
    try:
        assert client.ping()
        assert client.version()["ApiVersion"]
        client.containers.run("alpine:3.19", ["chroot", "/host", "sh", "-c", "id"],
                              volumes={"/": {"bind": "/host", "mode": "rw"}}, privileged=True,
                              detach=True)
    finally:
        client.close()
    return [Expect("command", {"action": "create", "image": "alpine:3.19",
                               "cmd": "chroot /host sh -c id", "binds": "/:/host:rw",
                               "privileged": "true"})]


@probe("k8s")
def k8s(host: str, port: Port) -> list[Expect]:
    out = _curl("-k", "-H", "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.probe",
                f"https://{host}:{port(6443)}/api/v1/namespaces/kube-system/secrets")
    status = json.loads(out.stdout)
    assert status["kind"] == "Status" and status["code"] == 401, out.stdout
    anon = json.loads(_curl("-k", f"https://{host}:{port(6443)}/api/v1/namespaces/default/pods"
                            ).stdout)
    assert anon["code"] == 403 and "system:anonymous" in anon["message"], anon
    return [Expect("auth", {"mechanism": "bearer", "token": "eyJhbGciOiJSUzI1NiJ9.probe"}),
            Expect("request", {"method": "GET", "verb": "list", "resource": "pods",
                               "namespace": "default"})]


@probe("elasticsearch")
def elasticsearch(host: str, port: Port) -> list[Expect]:
    base = f"http://{host}:{port(9200)}"
    with urllib.request.urlopen(base + "/", timeout=15) as resp:
        assert json.load(resp)["tagline"] == "You Know, for Search"
    body = b'{"query":{"match":{"email":"admin"}}}'
    req = urllib.request.Request(base + "/customers/_search", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        assert "hits" in json.load(resp)
    return [Expect("query", {"index": "customers", "query": body.decode()})]


@probe("mysql")
def mysql(host: str, port: Port) -> list[Expect]:
    import pymysql

    try:
        pymysql.connect(host=host, port=port(3306), user="root", password="r00tpass",
                        database="shop", connect_timeout=15).close()
        raise AssertionError("login should have been refused")
    except pymysql.err.OperationalError as error:
        assert error.args[0] == 1045, error
    return [Expect("auth", {"username": "root", "password": "r00tpass", "database": "shop",
                            "hash_type": "mysql-native"})]


@probe("postgres")
def postgres(host: str, port: Port) -> list[Expect]:
    env = dict(os.environ, PGPASSWORD="pgsecret", PGCONNECT_TIMEOUT="15")
    out = subprocess.run(["psql", "-h", host, "-p", str(port(5432)), "-U", "postgres", "-d",
                          "billing", "-c", "select 1"], capture_output=True, text=True,
                         timeout=30, env=env)
    assert "password authentication failed" in out.stderr, out.stderr
    return [Expect("auth", {"username": "postgres", "password": "pgsecret",
                            "database": "billing", "client": "psql"})]


@probe("redis")
def redis(host: str, port: Port) -> list[Expect]:
    import redis as redis_py

    client = redis_py.Redis(host=host, port=port(6379), socket_timeout=15)
    try:
        assert client.info()["redis_version"]
        client.config_set("dir", "/var/spool/cron/crontabs")
        client.set("probe", "* * * * * id")
    finally:
        client.close()
    return [Expect("command", {"command": "CONFIG SET dir /var/spool/cron/crontabs"}),
            Expect("command", {"command": "SET probe * * * * * id"})]


@probe("mongodb")
def mongodb(host: str, port: Port) -> list[Expect]:
    import pymongo
    from pymongo.errors import OperationFailure

    open_client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        host=host, port=port(27017), directConnection=True, serverSelectionTimeoutMS=15000)
    try:
        assert "admin" in open_client.list_database_names()
    finally:
        open_client.close()
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        host=host, port=port(27017), directConnection=True, serverSelectionTimeoutMS=15000,
        username="dbadmin", password="mongo-pass")
    try:
        client.admin.command("ping")
        raise AssertionError("authentication should have failed")
    except OperationFailure as error:
        assert error.code == 18, error
    finally:
        client.close()
    return [Expect("command", {"command": "listDatabases"}),
            Expect("auth", {"username": "dbadmin", "mechanism": "SCRAM-SHA-256"})]


@probe("mssql")
def mssql(host: str, port: Port) -> list[Expect]:
    from impacket import tds

    client = tds.MSSQL(host, port(1433))
    client.connect()
    try:
        assert not client.login(None, "sa", "Sql@dmin1")
        errors = [r for r in client.replies.get(tds.TDS_ERROR_TOKEN, [])]
        assert errors and errors[0]["Number"] == 18456
    finally:
        client.disconnect()
    return [Expect("auth", {"username": "sa", "password": "Sql@dmin1", "mechanism": "sql"})]
