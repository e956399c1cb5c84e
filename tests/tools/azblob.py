#!/usr/bin/env python3
"""A small Azure Blob client for the tests (stdlib only), independent of ckptfs's C code:
Shared Key signing written from Microsoft's spec, so Azurite's signature check judges
both. Used by tests/integration/test_azure.py to create containers and read blobs from
outside, and by azbearer.py to re-sign requests it lets through.

Azurite's well-known development account is ACCOUNT / KEY below."""
import base64
import datetime
import hashlib
import hmac
import http.client
import urllib.parse

ACCOUNT = "devstoreaccount1"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
VERSION = "2021-08-06"

SIGNED = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
          "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
          "If-Unmodified-Since", "Range"]


def string_to_sign(method, path, query, headers, account=ACCOUNT):
    """path: the URL path as sent; query: the raw query string; headers: dict."""
    h = {k.lower(): v for k, v in headers.items()}
    lines = [method]
    for name in SIGNED:
        v = h.get(name.lower(), "")
        if name == "Content-Length" and v == "0":
            v = ""
        lines.append(v)
    xms = sorted((k, v) for k, v in h.items() if k.startswith("x-ms-"))
    canon_headers = "".join(f"{k}:{v}\n" for k, v in xms)
    res = f"/{account}{path}"
    params = urllib.parse.parse_qsl(query, keep_blank_values=True)
    for k, v in sorted(params, key=lambda kv: kv[0].lower()):
        res += f"\n{k.lower()}:{v}"
    return "\n".join(lines) + "\n" + canon_headers + res


def authorization(method, path, query, headers, account=ACCOUNT, key=KEY):
    sts = string_to_sign(method, path, query, headers, account)
    sig = hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(sig).decode()}"


def now_header():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def request(port, method, path, query="", body=b"", headers=None):
    """One signed request to Azurite on 127.0.0.1:port; returns (status, headers, body)."""
    h = dict(headers or {})
    h.update({"x-ms-date": now_header(), "x-ms-version": VERSION})
    if method in ("PUT", "POST"):
        h["Content-Length"] = str(len(body))
    h["Authorization"] = authorization(method, path, query, h)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path + ("?" + query if query else ""), body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def create_container(port, name):
    st, _, body = request(port, "PUT", f"/{ACCOUNT}/{name}", "restype=container")
    if st not in (201, 409):
        raise AssertionError(f"create container {name}: {st} {body[:200]!r}")


def get_blob(port, container, blob):
    st, _, body = request(port, "GET", f"/{ACCOUNT}/{container}/{urllib.parse.quote(blob)}")
    if st != 200:
        raise AssertionError(f"get blob {container}/{blob}: {st} {body[:200]!r}")
    return body


def blob_exists(port, container, blob):
    st, _, _ = request(port, "HEAD", f"/{ACCOUNT}/{container}/{urllib.parse.quote(blob)}")
    return st == 200


def block_list(port, container, blob):
    """(committed ids, uncommitted ids) of a blob (Get Block List, blocklisttype=all)."""
    import xml.etree.ElementTree as ET
    st, _, body = request(port, "GET", f"/{ACCOUNT}/{container}/{urllib.parse.quote(blob)}",
                          "comp=blocklist&blocklisttype=all")
    if st == 404:
        return [], []
    if st != 200:
        raise AssertionError(f"get block list {container}/{blob}: {st} {body[:200]!r}")
    root = ET.fromstring(body)
    def ids(tag):
        el = root.find(tag)
        return [] if el is None else [b.findtext("Name") for b in el.findall("Block")]
    return ids("CommittedBlocks"), ids("UncommittedBlocks")


def account_sas(hours=2, account=ACCOUNT, key=KEY):
    """An account SAS for the blob service (sv 2019-12-12: no encryption scope field)."""
    exp = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours))
    se = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
    f = {"sv": "2019-12-12", "ss": "b", "srt": "sco", "sp": "rwdlac", "se": se,
         "spr": "https,http"}
    sts = "\n".join([account, f["sp"], f["ss"], f["srt"], "", se, "", f["spr"], f["sv"], ""])
    sig = hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()
    f["sig"] = base64.b64encode(sig).decode()
    return urllib.parse.urlencode(f)
