"""The search engine: the banner scanners read, searches, missing indices."""

from __future__ import annotations

from decnet.emulators.services import elasticsearch, http


def _req(method: str, target: str, **headers: str) -> http.Request:
    return http.Request(method, target, "HTTP/1.1", {k.lower().replace("_", "-"): v
                                                     for k, v in headers.items()})


def test_elasticsearch_banner_is_pretty_printed_like_the_server() -> None:
    config = dict(elasticsearch.DEFAULTS, version="7.17.18", clusterName="prod")
    res, index = elasticsearch.route(config, "node-1", "GET", "/")
    text = res.body.decode()
    assert index is None and '"number" : "7.17.18"' in text and '"cluster_name" : "prod"' in text
    assert text.endswith('"tagline" : "You Know, for Search"\n}\n')
    res, index = elasticsearch.route(config, "n", "POST", "/customers/_search")
    assert index == "customers" and res.status == 200
    res, index = elasticsearch.route(config, "n", "GET", "/secret/_search")
    assert res.status == 404 and b"index_not_found_exception" in res.body
    assert b"customers" in elasticsearch.route(config, "n", "GET", "/_cat/indices")[0].body
